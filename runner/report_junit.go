package runner

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit XML, as Jenkins, GitLab and GitHub test reporters read it: one test
// suite per command, one test case per artifact, a <failure> for an artifact
// that is not reproducible. encoding/xml escapes the text (and replaces
// characters XML cannot hold), so evidence from a build cannot break the file.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func (s *junitSuite) add(c junitCase) {
	s.Tests++
	if c.Failure != nil {
		s.Failures++
	}
	s.Cases = append(s.Cases, c)
}

func writeJUnit(w io.Writer, suite junitSuite) error {
	all := junitSuites{Name: "reprobox", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("runner: junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// firstLines is the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("… %d more lines", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

// JUnitEvidenceLines is how many lines of evidence a failure carries.
const JUnitEvidenceLines = 20

// WriteCheckJUnit writes a check's report as JUnit XML: a test case per
// artifact, failing with its culprits, their control and variant values and
// the first lines of the evidence, or as nondeterministic.
func WriteCheckJUnit(w io.Writer, project string, rep *CheckReport) error {
	suite := junitSuite{Name: "reprobox check " + project, Properties: []junitProperty{
		{"image", rep.Image}, {"seed", fmt.Sprint(rep.Seed)}, {"builds", fmt.Sprint(rep.Builds)},
	}}
	for _, a := range rep.Artifacts {
		c := junitCase{Name: a.Path, Classname: "reprobox.check"}
		switch {
		case a.Reproducible:
			c.SystemOut = "reproducible, sha256 " + a.ControlSHA256
		case a.Undecided:
			c.Failure = &junitFailure{Type: "undecided",
				Message: fmt.Sprintf("%s: no verdict within --max-builds %d (builds so far point at %s)", a.Path, rep.MaxBuilds, strings.Join(a.Hypothesis, ", ")),
				Text:    checkFailureText(rep, a)}
		case a.Nondeterministic:
			c.Failure = &junitFailure{Type: "nondeterministic",
				Message: a.Path + " is nondeterministic: it differs between builds in identical environments",
				Text:    checkFailureText(rep, a)}
		default:
			c.Failure = &junitFailure{Type: "not-reproducible",
				Message: a.Path + " is not reproducible: culprit(s) " + strings.Join(a.Culprits, ", "),
				Text:    checkFailureText(rep, a)}
		}
		suite.add(c)
	}
	return writeJUnit(w, suite)
}

func checkFailureText(rep *CheckReport, a ArtifactReport) string {
	var b strings.Builder
	for _, c := range a.Culprits {
		fmt.Fprintf(&b, "culprit %s\n", c)
		for _, name := range strings.Split(c, "+") {
			if v, ok := rep.Factors[name]; ok {
				fmt.Fprintf(&b, "  %s: %s -> %s\n", name, v.Control, v.Variant)
			}
		}
		if msg, ok := rep.BuildFailures[c]; ok {
			fmt.Fprintf(&b, "  perturbing %s breaks the build: %s\n", c, msg)
		}
	}
	fmt.Fprintf(&b, "control sha256 %s\nvariant sha256 %s\n", a.ControlSHA256, a.VariantSHA256)
	if a.Evidence != "" {
		b.WriteString("evidence:\n")
		b.WriteString(firstLines(a.Evidence, JUnitEvidenceLines))
		b.WriteString("\n")
	}
	return b.String()
}

// WriteVerifyJUnit writes a verify report as JUnit XML: a test case per
// artifact, failing unless it is a MATCH, with the digests, the factors found
// in the differing bytes and the first lines of the diff.
func WriteVerifyJUnit(w io.Writer, project string, rep *VerifyReport) error {
	suite := junitSuite{Name: "reprobox verify " + project, Properties: []junitProperty{
		{"image", rep.ImageDigest}, {"published", rep.Published}, {"builds", fmt.Sprint(rep.Builds)},
	}}
	for _, a := range rep.Artifacts {
		c := junitCase{Name: a.Name, Classname: "reprobox.verify"}
		if a.Status == VerifyMatch {
			c.SystemOut = "MATCH sha256 " + a.RebuiltSHA256
		} else {
			var b strings.Builder
			fmt.Fprintf(&b, "published sha256 %s (%s)\nrebuilt   sha256 %s (%s)\n", a.PublishedSHA256, a.Origin, a.RebuiltSHA256, a.Built)
			if a.Detail != "" {
				fmt.Fprintf(&b, "%s\n", a.Detail)
			}
			if len(a.DiffFactors) > 0 {
				fmt.Fprintf(&b, "culprit(s): the rebuild's normalized %s found in the differing bytes\n", strings.Join(a.DiffFactors, ", "))
			}
			if a.Diff != "" {
				b.WriteString("evidence:\n" + firstLines(a.Diff, JUnitEvidenceLines) + "\n")
			}
			msg := a.Name + ": " + a.Status
			if len(a.DiffFactors) > 0 {
				msg += " (culprit(s) " + strings.Join(a.DiffFactors, ", ") + ")"
			}
			c.Failure = &junitFailure{Type: strings.ToLower(a.Status), Message: msg, Text: b.String()}
		}
		suite.add(c)
	}
	if rep.BuildFailure != "" {
		suite.add(junitCase{Name: "build", Classname: "reprobox.verify",
			Failure: &junitFailure{Type: "build-failed", Message: "the rebuild failed", Text: rep.BuildFailure}})
	}
	return writeJUnit(w, suite)
}

// WriteExperimentJUnit writes an experiment's results as JUnit XML: a test
// case per project, image and artifact, failing with the factor levels whose
// builds differ from the baseline and the nondeterministic cells.
func WriteExperimentJUnit(w io.Writer, res *ExperimentResults) error {
	suite := junitSuite{Name: "reprobox experiment " + res.File, Properties: []junitProperty{
		{"seed", fmt.Sprint(res.Seed)}, {"design", res.Design}, {"repeats", fmt.Sprint(res.Repeats)},
	}}
	for _, hr := range res.HeatMap {
		c := junitCase{Name: hr.Project + " " + hr.Artifact + " in " + hr.Image, Classname: "reprobox.experiment"}
		var culprits []string
		var b strings.Builder
		for _, hc := range hr.Levels {
			if hc.Differing > 0 && !hc.Baseline {
				if !containsStr(culprits, hc.Factor) {
					culprits = append(culprits, hc.Factor)
				}
				fmt.Fprintf(&b, "%s=%s: %d of %d builds differ from the baseline (%.0f%%, 95%% CI %.0f-%.0f%%)\n",
					hc.Factor, hc.Level, hc.Differing, hc.Builds, hc.Share*100, hc.CILow*100, hc.CIHigh*100)
			}
		}
		if hr.NondeterministicCells > 0 {
			fmt.Fprintf(&b, "nondeterministic: repetitions disagree in %d of %d cells\n", hr.NondeterministicCells, hr.RepeatedCells)
		}
		if b.Len() > 0 {
			msg := hr.Artifact + " differs from its baseline"
			if len(culprits) > 0 {
				msg += ": culprit(s) " + strings.Join(culprits, ", ")
			}
			if hr.NondeterministicCells > 0 {
				msg += " (nondeterministic)"
			}
			c.Failure = &junitFailure{Type: "not-reproducible", Message: msg, Text: b.String()}
		} else {
			c.SystemOut = "equal to the baseline at every level"
		}
		suite.add(c)
	}
	return writeJUnit(w, suite)
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
