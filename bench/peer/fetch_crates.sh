#!/usr/bin/env bash
# Fetches vm-memory 0.18 and the crates its backend-mmap, backend-bitmap and iommu features need
# from Debian's packages into a cargo directory source, so the peer benchmark builds offline.
#
#   bash bench/peer/fetch_crates.sh        prints the directory source's path on stdout
#
# Cache: $GMEM_PEER_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/gmem-peer. Once the crates are there
# nothing is downloaded again. The host's own apt state is never touched: Debian sid's package
# lists go to a private directory under the cache and are used for `apt-get download` only (no
# package is installed; the .debs are unpacked with dpkg-deb -x). crates.io is not needed: Debian's
# librust-*-dev packages ship the .cargo-checksum.json a directory source wants.
#
# Exit status: 0 with the path; 3 when the crates cannot be had (the reason on stderr).
set -euo pipefail

CACHE="${GMEM_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gmem-peer}"
REGISTRY="$CACHE/registry"
STAMP="$REGISTRY/.gmem-peer-complete"
SUITE="${GMEM_PEER_SUITE:-sid}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# What vm-memory 0.18 pulls in with the three features: libc, rangemap, thiserror 2 and the proc
# macro stack behind thiserror-impl. Debian's Depends also list every optional dependency (serde,
# quickcheck, ...), so following them would fetch hundreds of crates cargo never reads.
PACKAGES=(
  librust-vm-memory-dev
  librust-libc-dev
  librust-rangemap-dev
  librust-thiserror-dev
  librust-thiserror-impl-dev
  librust-proc-macro2-dev
  librust-quote-dev
  librust-syn-dev
  librust-unicode-ident-dev
)
WANT_VM_MEMORY="0.18."

fail() {
  echo "fetch_crates: $*" >&2
  exit 3
}

if [[ -f "$STAMP" ]] && compgen -G "$REGISTRY/vm-memory-$WANT_VM_MEMORY*" >/dev/null; then
  echo "$REGISTRY"
  exit 0
fi

command -v apt-get >/dev/null || fail "apt-get not found: the crates come from Debian's packages, so a Debian-based host is needed"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found: needed to unpack the downloaded .deb files"
[[ -r "$KEYRING" ]] || fail "$KEYRING missing: cannot verify Debian's package lists (apt-get install debian-archive-keyring)"

APT_DIR="$CACHE/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/sources.list.d" "$CACHE/debs"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $SUITE main" >"$APT_DIR/sources.list"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$APT_DIR/sources.list"
  -o "Dir::Etc::sourceparts=$APT_DIR/sources.list.d"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "APT::Sandbox::User=root"
)

echo "fetch_crates: reading Debian $SUITE's package lists into $APT_DIR" >&2
apt-get "${APT_OPTS[@]}" -qq update >&2 || fail "apt-get update of Debian $SUITE failed (is the Debian mirror reachable?)"

version=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions librust-vm-memory-dev 2>/dev/null | sed -n 's/^Version: //p')
[[ -n "$version" ]] || fail "Debian $SUITE has no librust-vm-memory-dev package"
[[ "$version" == "$WANT_VM_MEMORY"* ]] ||
  fail "Debian $SUITE has librust-vm-memory-dev $version, not 0.18; the peer benchmark is written against 0.18's API"

echo "fetch_crates: downloading ${PACKAGES[*]}" >&2
(cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -qq download "${PACKAGES[@]}" >&2) ||
  fail "apt-get download failed for one of: ${PACKAGES[*]}"

unpack=$(mktemp -d "$CACHE/unpack.XXXXXX")
trap 'rm -rf "$unpack"' EXIT
for p in "${PACKAGES[@]}"; do
  # The newest .deb of each package, in case older downloads are still in the cache.
  deb=$(ls -1 "$CACHE/debs/${p}_"*.deb 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$deb" ]] || fail "no .deb of $p after the download"
  dpkg-deb -x "$deb" "$unpack"
done
src="$unpack/usr/share/cargo/registry"
compgen -G "$src/vm-memory-$WANT_VM_MEMORY*/.cargo-checksum.json" >/dev/null ||
  fail "the unpacked vm-memory has no .cargo-checksum.json; cargo cannot use it as a directory source"

rm -rf "$REGISTRY.new"
mkdir -p "$REGISTRY.new"
cp -a "$src"/. "$REGISTRY.new"/
(cd "$CACHE/debs" && ls -1 ./*.deb) >"$REGISTRY.new/.gmem-peer-complete"
rm -rf "$REGISTRY"
mv "$REGISTRY.new" "$REGISTRY"
echo "fetch_crates: crates in $REGISTRY: $(cd "$REGISTRY" && ls -1 | tr '\n' ' ')" >&2
echo "$REGISTRY"
