# cargo-deny, pinned, built once into target/tools (scripts/test sources this).
CARGO_DENY_VERSION=0.20.2
CARGO_DENY=target/tools/bin/cargo-deny

deny_install() {
  if [ -x "$CARGO_DENY" ] && "$CARGO_DENY" --version | grep -qF "$CARGO_DENY_VERSION"; then
    return
  fi
  cargo install --quiet --locked --version "$CARGO_DENY_VERSION" --root target/tools cargo-deny
}

# Licences, sources and duplicate crates (deny.toml), offline: no advisory database is read.
# Every package of the lock file is fetched first, those of other targets too, which the
# check reads.
deny_check() {
  cargo fetch --locked --quiet
  "$CARGO_DENY" --offline check bans licenses sources
}
