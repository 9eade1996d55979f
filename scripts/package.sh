#!/usr/bin/env bash
# Builds the Debian package: target/debian/photodeid_<version>-1_<arch>.deb.
#
#   bash scripts/package.sh            # release build (--features faces), then the .deb
#   PACKAGE_REUSE_BUILD=1 bash scripts/package.sh   # package target/release/photodeid as it is
#
# Installs cargo-deb first when it is missing (`cargo install cargo-deb
# --locked`: about 4 minutes on 2 cores, once per machine). The man pages
# (one per subcommand), the bash/zsh/fish completions and the packaged copy of
# the systemd unit (ExecStart=/usr/bin/photodeid) are generated from the built
# binary into target/deb-assets, so they always match it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package: installing cargo-deb (cargo install cargo-deb --locked)"
  start=$(date +%s)
  cargo install cargo-deb --locked --quiet
  echo "package: cargo-deb installed in $(($(date +%s) - start)) s"
fi

# Release build, with the face detector (feature `faces`: the package ships
# `--faces`, `--eyes` and `detect`). PACKAGE_REUSE_BUILD=1 packages the
# optimised binary already in target/release instead (.ci/run: the one
# `cargo bench --no-run --features faces` just built with the same settings,
# which saves a second release build).
bin=target/release/photodeid
if [ "${PACKAGE_REUSE_BUILD:-0}" = 1 ] && [ -x "$bin" ]; then
  echo "package: packaging the existing $bin"
else
  cargo build --release --locked --bin photodeid --features faces
fi
# A binary built without the feature refuses `detect`: never package it.
# (Captured, then searched: `| grep -q` under pipefail fails whenever grep quits first.)
said=$("$bin" detect fixtures/faces/astronaut.jpg 2>&1 || true)
grep -q '1 face found' <<<"$said" ||
  { echo "package: $bin finds no face on fixtures/faces/astronaut.jpg: build it with --features faces" >&2; exit 1; }

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/photodeid.bash"
"$bin" completions zsh >"$assets/completions/_photodeid"
"$bin" completions fish >"$assets/completions/photodeid.fish"
# The unit as installed by the package: the binary is in /usr/bin.
sed 's#/usr/local/bin/photodeid#/usr/bin/photodeid#g' scripts/photodeid-watch.service \
  >"$assets/photodeid-watch.service"
grep -q '^ExecStart=/usr/bin/photodeid watch ' "$assets/photodeid-watch.service"

cargo deb --no-build --locked "$@"
ls -l target/debian/*.deb
