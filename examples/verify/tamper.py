#!/usr/bin/env python3
"""Simulate a compromised build server: change one byte inside one rlib inside
the release tarball, then update SHA256SUMS and the channel manifest to match
(as a server that signs what it built would), so only a rebuild can tell.

usage: tamper.py RELEASE_DIR OUT_DIR OLD NEW

OLD and NEW are strings of equal length; the first occurrence of OLD inside
an .rlib member of the uncompressed tar stream is replaced. Only those bytes
change: tar headers are untouched (their checksums cover headers only), and
the stream is recompressed as `gzip -n -9` does (no name, no time, OS Unix)."""
import gzip, hashlib, io, os, re, shutil, sys, tarfile

src, dst, old, new = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
assert len(old) == len(new), "OLD and NEW must have the same length"
shutil.copytree(src, dst)
tarball = next(f for f in sorted(os.listdir(dst)) if f.endswith(".tar.gz"))
path = os.path.join(dst, tarball)
with gzip.open(path) as f:
    raw = f.read()
at, member = -1, None
for m in tarfile.open(fileobj=io.BytesIO(raw)).getmembers():
    if m.isfile() and m.name.endswith(".rlib"):
        i = raw.find(old, m.offset_data, m.offset_data + m.size)
        if i >= 0:
            at, member = i, m.name
            break
assert at >= 0, f"{old!r} is in no rlib of {tarball}"
raw = raw[:at] + new + raw[at + len(old):]
buf = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
    g.write(raw)
data = bytearray(buf.getvalue())
data[9] = 3  # OS: Unix, as gzip writes it
with open(path, "wb") as f:
    f.write(data)
new_sum = hashlib.sha256(data).hexdigest()
for meta in ("SHA256SUMS", "channel-rust-hello.toml"):
    p = os.path.join(dst, meta)
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(re.sub(r"[0-9a-f]{64}", new_sum, text))
print(f"changed {old.decode()!r} to {new.decode()!r} at offset {at} of the tar stream, in {member}; "
      f"{tarball} is now sha256 {new_sum}, and SHA256SUMS and the manifest say so")
