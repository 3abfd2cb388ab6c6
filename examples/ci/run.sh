#!/bin/sh
# The commands of the CI examples (github-actions.yml, gitlab-ci.yml): check a
# crate for reproducibility and keep the report as JSON, HTML and JUnit XML.
#
#   examples/ci/run.sh CRATE_DIR [REPORT_DIR] [-- extra check flags...]
#
# REPROBOX names the reprobox binary (default: reprobox in PATH). The exit
# status is check's: 0 reproducible, 1 not (the reports are written either
# way), 2 usage or config error, 3 reprobox failed.
set -eu
crate=${1:?usage: run.sh CRATE_DIR [REPORT_DIR] [-- check flags...]}
shift
reports=reprobox-reports
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
	reports=$1
	shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
reprobox=${REPROBOX:-reprobox}
mkdir -p "$reports"
status=0
"$reprobox" check "$crate" --out "$reports/out" --json "$reports/report.json" --html "$reports/report.html" --junit "$reports/junit.xml" "$@" || status=$?
echo "reports in $reports: report.json report.html junit.xml (check exit status $status)" >&2
exit "$status"
