#!/usr/bin/env bash
# vendor/rusty-leveldb is the crates.io release of rusty-leveldb (VERSION,
# built from upstream commit COMMIT) with rusty-leveldb.patch applied. This
# checks that, byte for byte: it fetches the release through cargo (whose
# registry checksum vouches for it), applies the patch and compares the
# result with the tree. `--write` makes the patch anew from the tree instead.
set -euo pipefail
VERSION=4.0.2
COMMIT=458e7ac9571402c1b0b0df77319ae76731f1f8df
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch"
version = "0.0.0"
edition = "2021"

[dependencies]
rusty-leveldb = "=$VERSION"
EOF
echo 'fn main() {}' > "$work/fetch/src/main.rs"
manifest=$(cd "$work/fetch" && cargo metadata --quiet --format-version 1 |
  python3 -c 'import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "rusty-leveldb"))')
release=$(dirname "$manifest")
grep -q "\"$COMMIT\"" "$release/.cargo_vcs_info.json" || {
  echo "check-patch: rusty-leveldb $VERSION does not say it was built from $COMMIT" >&2
  exit 1
}

mkdir "$work/a" "$work/b"
cp -r "$release/." "$work/a"
rm -f "$work/a/.cargo-ok" "$work/a/.cargo_vcs_info.json" "$work/a/Cargo.toml.orig"
if [ "${1:-}" = --write ]; then
  (cd "$here/rusty-leveldb" && git ls-files -z | xargs -0 cp --parents -t "$work/b")
  (cd "$work" && diff -ruN a b > "$here/rusty-leveldb.patch") || [ $? -eq 1 ]
  echo "check-patch: wrote rusty-leveldb.patch"
  exit 0
fi
cp -r "$work/a/." "$work/b"
(cd "$work/b" && patch -p1 --quiet --no-backup-if-mismatch < "$here/rusty-leveldb.patch")
if ! diff -r -x target "$work/b" "$here/rusty-leveldb" > "$work/differs"; then
  echo "check-patch: vendor/rusty-leveldb is not the release with rusty-leveldb.patch applied:" >&2
  head -40 "$work/differs" >&2
  echo "(vendor/check-patch.sh --write makes the patch anew)" >&2
  exit 1
fi
echo "check-patch: vendor/rusty-leveldb is rusty-leveldb $VERSION ($COMMIT) with rusty-leveldb.patch"
