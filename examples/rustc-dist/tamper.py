#!/usr/bin/env python3
"""Simulate a compromised build server for a rustc release: change one byte
in the code of one rlib inside one .tar.xz of the release, then update the
channel manifest's hash (as a server that signs what it built would), so that
only a rebuild can tell.

usage: tamper.py RELEASE_DIR OUT_DIR COMPONENT RLIB_PREFIX SYMBOL

The byte changed is the first byte of the code of the first function whose
symbol name contains SYMBOL (an ELF symbol of a .o
member of the first rlib of the tarball of COMPONENT whose base name starts
with RLIB_PREFIX, e.g. libcore-); it is inverted. Tar headers and every other
byte stay the same; the stream is recompressed with xz (preset 6, CRC64).
Prints what it changed."""
import hashlib, io, lzma, os, re, shutil, struct, sys, tarfile

src, dst, component, prefix, symbol = sys.argv[1:6]
shutil.copytree(src, dst)
tarball = next(f for f in sorted(os.listdir(dst)) if f.startswith(component + "-") and f.endswith(".tar.xz"))
path = os.path.join(dst, tarball)
with open(path, "rb") as f:
    raw = bytearray(lzma.decompress(f.read()))


def ar_members(data, base):
    """(name, offset, size) of each member of an ar archive at data[base:]."""
    assert data[base:base + 8] == b"!<arch>\n", "not an ar archive"
    at, names = base + 8, b""
    while at + 60 <= len(data):
        h = data[at:at + 60]
        name, size = h[0:16].decode().rstrip(), int(h[48:58].decode().strip())
        body = at + 60
        if name == "//":
            names = bytes(data[body:body + size])
        elif name.startswith("/") and name[1:].isdigit():
            off = int(name[1:])
            name = names[off:names.index(b"/\n", off)].decode()
        yield name.rstrip("/"), body, size
        at = body + size + (size & 1)


def symbol_offset(data, base, want):
    """Offset (from base) of the code of the first function whose name holds want, in an ELF64 object."""
    shoff, = struct.unpack_from("<Q", data, base + 0x28)
    shentsize, shnum, _ = struct.unpack_from("<HHH", data, base + 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, base + shoff + i * shentsize) for i in range(shnum)]
    for s in secs:
        if s[1] != 2:  # SHT_SYMTAB
            continue
        strtab = secs[s[6]]
        for i in range(s[5] // 24):
            name, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, base + s[4] + i * 24)
            nm = data[base + strtab[4] + name:data.index(0, base + strtab[4] + name)].decode()
            if want in nm and info & 0xF == 2 and 0 < shndx < shnum and size > 0:  # STT_FUNC
                return secs[shndx][4] + value, nm
    return None, None


done = None
for m in tarfile.open(fileobj=io.BytesIO(bytes(raw))).getmembers():
    if not (m.isfile() and os.path.basename(m.name).startswith(prefix) and m.name.endswith(".rlib")):
        continue
    for name, off, size in ar_members(raw, m.offset_data):
        if not name.endswith(".o"):
            continue
        at, nm = symbol_offset(raw, off, symbol)
        if at is not None:
            raw[off + at] ^= 0xFF
            done = (m.name, name, nm, at)
            break
    if done:
        break
assert done, f"no symbol {symbol} in an rlib {prefix}* of {tarball}"
data = lzma.compress(bytes(raw), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)
with open(path, "wb") as f:
    f.write(data)
new_sum = hashlib.sha256(data).hexdigest()
for meta in os.listdir(dst):
    if not meta.endswith(".toml"):
        continue
    p = os.path.join(dst, meta)
    with open(p) as f:
        text = f.read()
    text = re.sub(r'(xz_url = "[^"]*/' + re.escape(tarball) + r'"\nxz_hash = ")[0-9a-f]{64}', r"\g<1>" + new_sum, text)
    with open(p, "w") as f:
        f.write(text)
print(f"{tarball}: {done[0]}: member {done[1]}: symbol {done[2]}: byte at {done[3]} of the object inverted; new sha256 {new_sum}")
