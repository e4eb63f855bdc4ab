#!/bin/bash
# `mutual data import` with several --text inputs: files, a folder (recursive, sorted by
# path, hidden and non-regular files skipped) and '-' for stdin; the "sources" attribute
# lists each file with its size and SHA-256; a missing input writes nothing.
# usage: data_import_many.sh MUTUAL
MUTUAL=$1
. "$(dirname "$0")/../check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# has_tokens H5 FILE...: the HDF5 file holds the uint16 LE tokens of the FILEs concatenated
has_tokens() {
  local h5=$1
  shift
  python3 -c '
import sys
want = b"".join(open(p, "rb").read() for p in sys.argv[2:])
tok = b"".join(bytes([c, 0]) for c in want)
sys.exit(0 if tok in open(sys.argv[1], "rb").read() else 1)' "$h5" "$@"
}

printf 'alpha alpha alpha\n' >"$tmp/a.txt"  # 18 bytes
printf 'bravo bravo bravo bravo\n' >"$tmp/b.txt" # 24 bytes
check two_files 0 "42 tokens \(byte-level, vocab_size 256\) from 2 files" -- \
  "$MUTUAL" data import --text "$tmp/a.txt" --text "$tmp/b.txt" --out "$tmp/two.h5"
check two_files_tokens 0 "" -- has_tokens "$tmp/two.h5" "$tmp/a.txt" "$tmp/b.txt"
check two_files_sources_a 0 "" -- grep -aq "$(sha256sum <"$tmp/a.txt" | cut -d' ' -f1) 18 $tmp/a.txt" "$tmp/two.h5"
check two_files_sources_b 0 "" -- grep -aq "$(sha256sum <"$tmp/b.txt" | cut -d' ' -f1) 24 $tmp/b.txt" "$tmp/two.h5"

# a folder: nested files in sorted path order; hidden files, hidden folders, symlinks skipped
mkdir -p "$tmp/d/sub" "$tmp/d/.git" "$tmp/d/a"
printf 'zulu file at top\n' >"$tmp/d/z.txt"
printf 'nested one\n' >"$tmp/d/sub/1.txt"
printf 'nested two\n' >"$tmp/d/sub/2.txt"
printf 'first by path\n' >"$tmp/d/a/x.txt"
printf 'HIDDEN\n' >"$tmp/d/.hidden"
printf 'HIDDEN\n' >"$tmp/d/.git/config"
ln -s "$tmp/a.txt" "$tmp/d/link.txt"
sorted=("$tmp/d/a/x.txt" "$tmp/d/sub/1.txt" "$tmp/d/sub/2.txt" "$tmp/d/z.txt")
total=$(cat "${sorted[@]}" | wc -c)
check folder 0 "$total tokens \(byte-level, vocab_size 256\) from 4 files" -- "$MUTUAL" data import --text "$tmp/d" --out "$tmp/dir.h5"
check folder_tokens 0 "" -- has_tokens "$tmp/dir.h5" "${sorted[@]}"
check folder_no_hidden 1 "" -- grep -aq HIDDEN "$tmp/dir.h5"
check listed 0 "$total tokens \(byte-level, vocab_size 256\) from 4 files" -- "$MUTUAL" data import \
  --text "${sorted[0]}" --text "${sorted[1]}" --text "${sorted[2]}" --text "${sorted[3]}" --out "$tmp/list.h5"
check listed_tokens 0 "" -- has_tokens "$tmp/list.h5" "${sorted[@]}"
check folder_sources 0 "" -- grep -aq "$(sha256sum <"$tmp/d/sub/2.txt" | cut -d' ' -f1) 11 $tmp/d/sub/2.txt" "$tmp/dir.h5"

# stdin, between two files
stdin_import() { "$MUTUAL" data import --text "$tmp/a.txt" --text - --text "$tmp/b.txt" --out "$tmp/in.h5" <"$tmp/d/z.txt"; }
check stdin 0 "59 tokens \(byte-level, vocab_size 256\) from 3 files" -- stdin_import
check stdin_tokens 0 "" -- has_tokens "$tmp/in.h5" "$tmp/a.txt" "$tmp/d/z.txt" "$tmp/b.txt"
check stdin_sources 0 "" -- grep -aq "$(sha256sum <"$tmp/d/z.txt" | cut -d' ' -f1) 17 -" "$tmp/in.h5"

# a missing input: clear error, no output written, an existing output left alone
check missing 1 "nope.txt: No such file" -- \
  "$MUTUAL" data import --text "$tmp/a.txt" --text "$tmp/nope.txt" --out "$tmp/miss.h5"
check missing_no_output 1 "" -- test -e "$tmp/miss.h5"
cp "$tmp/two.h5" "$tmp/keep.h5"
check missing_keeps_old 1 "nope.txt" -- \
  "$MUTUAL" data import --text "$tmp/nope.txt" --text "$tmp/d" --out "$tmp/keep.h5"
check missing_old_intact 0 "" -- cmp "$tmp/two.h5" "$tmp/keep.h5"
check usage_no_text 2 "--text and --out are required" -- "$MUTUAL" data import --out "$tmp/x.h5"
check help_many 0 "may be repeated" -- "$MUTUAL" data --help

check_done
