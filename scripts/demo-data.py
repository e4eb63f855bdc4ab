#!/usr/bin/python3
"""demo-data.py - the embedded demo's text, taken from files that Debian packages ship.

Run with Debian's interpreter (/usr/bin/python3). Nothing is downloaded: every byte comes
from packages that `scripts/bootstrap` installs (or that every Debian 12 system has).

    demo-data.py orgs OUT_DIR [--train-bytes N] [--heldout-bytes M]
        writes, for every org NAME, OUT_DIR/NAME.train.txt and OUT_DIR/NAME.heldout.txt,
        OUT_DIR/pooled.heldout.txt (every org's held-out text, concatenated) and
        OUT_DIR/manifest.json (which files each org's text came from, bytes, sha256).
    demo-data.py pretrain OUT_FILE
        writes the base model's pretraining text (see make-base-model.py).

The three orgs hold different kinds of text, none of which the base model was trained on:

  legal    a law office: the license texts of /usr/share/common-licenses (base-files)
  clib     a systems shop: GNU C library headers (the *.h files that libc6-dev ships)
  python   a data team: top-level Python standard library modules (/usr/lib/python3.11/*.py,
           libpython3.11-stdlib)

The base model's pretraining text is generic text of the same machine from other files:
Debian copyright notices of common packages, Linux kernel UAPI headers (linux-libc-dev)
and Python standard library *packages* (subdirectories of /usr/lib/python3.11), so each org
has new documents in a domain the base model has seen a little of.

Every choice is deterministic: files are listed in sorted order, shuffled with a fixed seed
where a subset is taken, and read as bytes. The same package versions give the same bytes.
"""
import glob
import hashlib
import json
import os
import random
import subprocess
import sys

PY = "/usr/lib/python3.11"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _dedupe(paths):
    """Real files only (symlinks resolved), each content once, in the given order."""
    seen_paths, seen_hashes, out = set(), set(), []
    for p in paths:
        rp = os.path.realpath(p)
        if rp in seen_paths or not os.path.isfile(rp):
            continue
        seen_paths.add(rp)
        h = hashlib.sha256(_read(rp)).hexdigest()
        if h in seen_hashes:
            continue
        seen_hashes.add(h)
        out.append(rp)
    return out


def _take(paths, budget, seed):
    """A deterministic subset of paths (shuffled with `seed`) of about `budget` bytes."""
    paths = sorted(paths)
    random.Random(seed).shuffle(paths)
    out, total = [], 0
    for p in paths:
        if total >= budget:
            break
        out.append(p)
        total += os.path.getsize(p)
    return out


def _dpkg_files(package, suffix):
    try:
        res = subprocess.run(["dpkg", "-L", package], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(p for p in res.stdout.splitlines() if p.endswith(suffix) and os.path.isfile(p))


# ----------------------------------------------------------------------------- orgs


def org_sources():
    """org name -> sorted candidate files. Each org has at least ~235 kB of text."""
    legal = _dedupe(sorted(glob.glob("/usr/share/common-licenses/*")))
    clib = [p for p in _dpkg_files("libc6-dev", ".h") if p.startswith("/usr/include/")]
    if not clib:  # dpkg database unavailable: the same files by location
        clib = sorted(glob.glob("/usr/include/*.h") + glob.glob("/usr/include/sys/*.h"))
    python = sorted(glob.glob(PY + "/*.py"))
    return {"legal": legal, "clib": _dedupe(clib), "python": _dedupe(python)}


def org_texts(train_bytes, heldout_bytes):
    """org -> (train bytes, held-out bytes, files used). Held-out text is whole files the
    org's training text does not contain: files are shuffled with a fixed seed, the first
    ones up to heldout_bytes are held out (cut to exactly heldout_bytes), the next ones up
    to train_bytes are for training."""
    out = {}
    for i, (name, paths) in enumerate(sorted(org_sources().items())):
        if not paths:
            raise SystemExit(f"demo-data: no files found for org '{name}'")
        paths = sorted(paths)
        random.Random(1000 + i).shuffle(paths)
        held, train, used_h, used_t = b"", b"", [], []
        for p in paths:
            data = _read(p)
            if len(held) < heldout_bytes:
                held += data
                used_h.append(p)
            elif len(train) < train_bytes:
                train += data
                used_t.append(p)
            else:
                break
        held, train = held[:heldout_bytes], train[:train_bytes]
        if len(held) < heldout_bytes or len(train) < min(train_bytes, 4 * heldout_bytes):
            raise SystemExit(f"demo-data: org '{name}' has too little text "
                             f"({len(train)} train, {len(held)} held-out bytes)")
        out[name] = (train, held, {"train_files": used_t, "heldout_files": used_h})
    return out


# ----------------------------------------------------------------------------- pretraining

# Packages whose copyright notices are in the pretraining text: every Debian 12 system
# with our bootstrap packages has them. Missing ones are skipped (and change the corpus
# hash that make-base-model.py records).
COPYRIGHT_PACKAGES = [
    "apt", "base-files", "bash", "binutils", "cmake", "coreutils", "debianutils",
    "diffutils", "dpkg", "findutils", "gcc-12", "grep", "gzip", "libc6", "libcmocka0",
    "libhdf5-dev", "libjansson4", "libopenblas0-openmp", "libsodium23", "libssl3",
    "libyaml-0-2", "login", "make", "ncurses-base", "openssl", "perl", "protobuf-c-compiler",
    "python3-numpy", "python3-torch", "python3.11", "sed", "tar", "util-linux", "zlib1g",
]

PY_PACKAGES = ["asyncio", "concurrent", "email", "http", "importlib", "json", "logging",
               "multiprocessing", "sqlite3", "unittest", "urllib", "xml", "xmlrpc", "wsgiref",
               "tomllib", "zoneinfo", "html", "dbm", "ctypes", "curses"]


def pretrain_files():
    prose = _dedupe([f"/usr/share/doc/{p}/copyright" for p in COPYRIGHT_PACKAGES])
    kernel = _take(_dedupe(sorted(glob.glob("/usr/include/linux/*.h"))), 1_400_000, 7)
    pyfiles = []
    for pkg in PY_PACKAGES:
        pyfiles += sorted(glob.glob(f"{PY}/{pkg}/**/*.py", recursive=True))
    pyfiles = [p for p in pyfiles if "/test" not in p[len(PY):]]
    python = _take(_dedupe(pyfiles), 1_400_000, 11)
    return prose + kernel + python


def pretrain_text():
    files = pretrain_files()
    if len(files) < 100:
        raise SystemExit("demo-data: too few pretraining files found; is this Debian 12?")
    text = b"".join(_read(p) for p in files)
    return text, files


# ----------------------------------------------------------------------------- main


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("orgs")
    o.add_argument("out")
    o.add_argument("--train-bytes", type=int, default=200_000)
    o.add_argument("--heldout-bytes", type=int, default=12_416)
    p = sub.add_parser("pretrain")
    p.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "pretrain":
        text, files = pretrain_text()
        _write(a.out, text)
        print(f"{a.out}: {len(text)} bytes from {len(files)} files, "
              f"sha256 {hashlib.sha256(text).hexdigest()}")
        return 0
    os.makedirs(a.out, exist_ok=True)
    manifest, pooled = {}, b""
    for name, (train, held, used) in org_texts(a.train_bytes, a.heldout_bytes).items():
        _write(os.path.join(a.out, f"{name}.train.txt"), train)
        _write(os.path.join(a.out, f"{name}.heldout.txt"), held)
        pooled += held
        manifest[name] = {"train_bytes": len(train), "heldout_bytes": len(held),
                          "train_sha256": hashlib.sha256(train).hexdigest(),
                          "heldout_sha256": hashlib.sha256(held).hexdigest(), **used}
        print(f"  {name:8s} {len(train):7d} training bytes from {len(used['train_files']):3d} "
              f"files, {len(held):6d} held-out bytes from {len(used['heldout_files'])} files")
    _write(os.path.join(a.out, "pooled.heldout.txt"), pooled)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
