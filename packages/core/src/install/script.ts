/** What {@link installScript} bakes into the script it renders for one token. */
export interface ScriptInput {
  /** The core's URL (downloads come from it) and every URL the agent may use, in order. */
  coreUrl: string;
  coreUrls: readonly string[];
  token: string;
  /** The core's CA certificate (PEM): given for an https core, so the script's downloads and the agent trust it. */
  caPem?: string | undefined;
  /**
   * Base URLs tried before the core for each file (`<mirror>/<name>`): the ready codebases
   * of the token's site's package servers. A mirror is never trusted for content: what it
   * sends must hash to the signed sha256, else the next source is tried.
   */
  mirrors?: readonly string[] | undefined;
  /** sha256 (hex) of the CA certificate's DER: the agent's `caFingerprint` (it enrolls only with a core of this CA). */
  caFingerprint: string;
  /** The core's work-signing public key (PEM), the manifest and its base64 signature. */
  workKeyPem: string;
  manifest: string;
  signature: string;
  /** The single-file agent and the agent .deb in the manifest ('' when the core has none). */
  agentFile: string;
  debFile: string;
}

/** A value as a single-quoted shell word. */
export const shQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** The installer's exit codes (also in README.md). */
export const SCRIPT_EXIT = { ok: 0, cannotInstall: 2, unsupportedOs: 3, verifyFailed: 4, installFailed: 5 } as const;

/**
 * The POSIX sh installer `GET /install/agent.sh` answers: everything it needs is in its
 * header (no further call to the core but the downloads), the body is the same for all.
 */
export function installScript(i: ScriptInput): string {
  const header = [
    `CORE_URL=${shQuote(i.coreUrl)}`,
    `CORE_URLS=${shQuote(i.coreUrls.join(','))}`,
    `TOKEN=${shQuote(i.token)}`,
    `CA_PEM=${shQuote(i.caPem?.trim() ?? '')}`,
    `MIRRORS=${shQuote((i.mirrors ?? []).join(' '))}`,
    `CA_FINGERPRINT=${shQuote(i.caFingerprint)}`,
    `WORK_KEY_PEM=${shQuote(i.workKeyPem.trim())}`,
    `MANIFEST=${shQuote(i.manifest)}`,
    `SIGNATURE=${shQuote(i.signature)}`,
    `AGENT_FILE=${shQuote(i.agentFile)}`,
    `DEB_FILE=${shQuote(i.debFile)}`,
  ].join('\n');
  return `#!/bin/sh
# The Outpost agent installer, made by the core for one enrollment token.
#   curl -fsS '<core>/install/agent.sh?token=T' | sudo sh
#   OUTPOST_PREFIX=DIR sh agent.sh     (no root: installs and starts the agent under DIR)
# Exit codes: 0 installed and started; 2 cannot install here (not root without
# OUTPOST_PREFIX, no curl, nothing to install); 3 unsupported OS (Linux x86_64 only);
# 4 a download failed or does not match the sha256 the core signed; 5 install or start failed.
set -euf
umask 077
${header}

say() { printf 'outpost-install: %s\\n' "$*" >&2; }
fail() { c=$1; shift; say "$*"; exit "$c"; }
has() { command -v "$1" >/dev/null 2>&1; }

os=$(uname -s 2>/dev/null || echo unknown)
arch=$(uname -m 2>/dev/null || echo unknown)
if [ "$os" != Linux ] || [ "$arch" != x86_64 ]; then
  fail 3 "unsupported OS: $os $arch (the agent is built for Linux x86_64)"
fi
PREFIX=\${OUTPOST_PREFIX:-}
if [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
  fail 2 "run as root (curl ... | sudo sh) or set OUTPOST_PREFIX=DIR to install under DIR"
fi
has curl || fail 2 "curl is needed"
systemd=0
if [ -z "$PREFIX" ] && [ -d /run/systemd/system ] && has systemctl; then systemd=1; fi
if [ -n "$PREFIX" ]; then mode=prefix
elif [ -n "$DEB_FILE" ] && has dpkg; then mode=deb
else mode=file
fi
if [ "$mode" != deb ] && [ -z "$AGENT_FILE" ]; then
  fail 2 "the core serves no single-file agent (only a .deb, and this host has no dpkg or OUTPOST_PREFIX is set)"
fi

work=$(mktemp -d "\${TMPDIR:-/tmp}/outpost-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%s' "$MANIFEST" > "$work/manifest"
if [ -n "$CA_PEM" ]; then printf '%s\\n' "$CA_PEM" > "$work/ca.pem"; fi

# The manifest (name, size, sha256 of each file) is signed with the core's work key.
if has openssl && openssl version 2>/dev/null | grep -q '^OpenSSL [3-9]'; then
  printf '%s\\n' "$WORK_KEY_PEM" > "$work/work-key.pem"
  printf '%s' "$SIGNATURE" | openssl base64 -d -A > "$work/manifest.sig"
  openssl pkeyutl -verify -pubin -inkey "$work/work-key.pem" -rawin -in "$work/manifest" -sigfile "$work/manifest.sig" >/dev/null 2>&1 \\
    || fail 4 "the manifest's signature does not verify with the core's work-signing key"
  say "manifest signature verified"
else
  say "no OpenSSL 3 here: the manifest's signature is not checked (the sha256 sums in this script still are)"
fi

sum() {
  if has sha256sum; then sha256sum "$1" | cut -d' ' -f1
  else openssl dgst -sha256 -r "$1" | cut -d' ' -f1
  fi
}
# fetch URL DEST [CURL OPTION...]: one download; over https only from a certificate of the
# core's CA (the core's own, and a package server's the core issued).
fetch() {
  u=$1; d=$2; shift 2
  if [ -n "$CA_PEM" ]; then curl -fsS "$@" --cacert "$work/ca.pem" -o "$d" "$u"
  else curl -fsS "$@" -o "$d" "$u"
  fi
}
# get NAME DEST: downloads a file of the manifest and checks its sha256: from the site's
# package servers first (MIRRORS, a short connect timeout each), then from the core.
get() {
  want=$(awk -v n="$1" '$3 == n { print $1 }' "$work/manifest")
  [ -n "$want" ] || fail 4 "$1 is not in the core's manifest"
  for m in $MIRRORS; do
    if fetch "$m/$1" "$2" --connect-timeout 5 --retry 1 2>"$work/mirror.err"; then
      got=$(sum "$2")
      if [ "$got" = "$want" ]; then say "$1: sha256 verified (from the site's package server $m)"; return 0; fi
      say "$1 from $m: sha256 $got, but the core signed $want; not used"
    else
      say "$1: the site's package server $m did not serve it ($(head -c 200 "$work/mirror.err")); trying the next source"
    fi
    rm -f "$2"
  done
  fetch "$CORE_URL/install/files/$1" "$2" --retry 3 || fail 4 "cannot download $1 from $CORE_URL"
  got=$(sum "$2")
  [ "$got" = "$want" ] || fail 4 "$1: sha256 $got, but the core signed $want"
  say "$1: sha256 verified"
}
# configure BIN CONF DATA_DIR: the agent writes its own config (0600): core, token, CA pin.
configure() {
  "$1" enroll --core "$CORE_URLS" --token "$TOKEN" --ca-fingerprint "$CA_FINGERPRINT" --config "$2" --data-dir "$3" >&2 \\
    || fail 5 "outpost-agent enroll could not write $2"
}
# place SRC DEST: installs an executable (a running one is replaced, not overwritten).
place() {
  cp "$1" "$2.new" && chmod 755 "$2.new" && mv -f "$2.new" "$2" || fail 5 "cannot install $2"
}
# background BIN CONF LOG PIDFILE [USER]: starts the agent detached from this shell (as USER).
background() {
  if [ -f "$4" ] && kill -0 "$(cat "$4")" 2>/dev/null; then kill "$(cat "$4")" 2>/dev/null || true; sleep 1; fi
  as=''
  if [ -n "\${5:-}" ]; then
    if has setpriv; then as="setpriv --reuid=$5 --regid=$5 --init-groups"
    elif has runuser; then as="runuser -u $5 --"
    else fail 5 "neither setpriv nor runuser here to start the agent as $5"
    fi
  fi
  if has setsid; then setsid nohup $as "$1" run --config "$2" >>"$3" 2>&1 </dev/null &
  else nohup $as "$1" run --config "$2" >>"$3" 2>&1 </dev/null &
  fi
  echo $! > "$4"
  say "started the agent in the background (pid $!); its log: $3"
}

case $mode in
  prefix)
    bin="$PREFIX/bin/outpost-agent"; conf="$PREFIX/etc/agent.yaml"; data="$PREFIX/var/agent"; log="$PREFIX/var/log/outpost-agent.log"; pid="$PREFIX/var/outpost-agent.pid"
    mkdir -p "$PREFIX/bin" "$PREFIX/etc" "$data" "$PREFIX/var/log" || fail 5 "cannot create $PREFIX"
    get "$AGENT_FILE" "$work/agent"
    place "$work/agent" "$bin"
    configure "$bin" "$conf" "$data"
    background "$bin" "$conf" "$log" "$pid"
    ;;
  deb)
    # The package's postinst writes /etc/outpost/agent.yaml from these (unless one is there
    # already: a reinstall keeps it), enables the unit and, under systemd, starts it.
    data=/var/lib/outpost/agent; conf=/etc/outpost/agent.yaml
    get "$DEB_FILE" "$work/agent.deb"
    OUTPOST_CORE_URL="$CORE_URLS" OUTPOST_ENROLL_TOKEN="$TOKEN" OUTPOST_CA_FINGERPRINT="$CA_FINGERPRINT" dpkg -i "$work/agent.deb" >&2 || fail 5 "dpkg -i $DEB_FILE failed"
    [ -s "$conf" ] || fail 5 "the package did not write $conf (see dpkg's output above)"
    if [ $systemd = 1 ]; then
      log='journalctl -u outpost-agent'
      systemctl enable --now outpost-agent.service >&2 || fail 5 "systemctl cannot start outpost-agent"
    else
      # No systemd (a container, a chroot): the package starts nothing; started here as the
      # unit would, as the outpost user. A reboot does not start it again.
      log=/var/log/outpost-agent.log; pid=/run/outpost-agent.pid
      background /usr/bin/outpost-agent "$conf" "$log" "$pid" outpost
      say "no systemd here: the agent runs until this machine stops; start it again with: $as /usr/bin/outpost-agent run --config $conf"
    fi
    ;;
  file)
    bin=/usr/local/bin/outpost-agent; conf=/etc/outpost/agent.yaml; data=/var/lib/outpost/agent
    mkdir -p /usr/local/bin /etc/outpost "$data" || fail 5 "cannot create /etc/outpost or $data"
    get "$AGENT_FILE" "$work/agent"
    place "$work/agent" "$bin"
    configure "$bin" "$conf" "$data"
    if [ $systemd = 1 ]; then
      log='journalctl -u outpost-agent'
      cat > /etc/systemd/system/outpost-agent.service <<UNIT
[Unit]
Description=Outpost agent
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=$bin run --config $conf
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
      systemctl daemon-reload && systemctl enable outpost-agent.service >&2 && systemctl restart outpost-agent.service || fail 5 "systemctl cannot start outpost-agent"
    else
      log=/var/log/outpost-agent.log; pid=/run/outpost-agent.pid
      background "$bin" "$conf" "$log" "$pid"
    fi
    ;;
esac

# The agent enrolls at its first start: wait for its identity (30 s at most).
i=0
while [ $i -lt 30 ] && [ ! -s "$data/identity.json" ]; do
  if [ -n "\${pid:-}" ] && ! kill -0 "$(cat "$pid")" 2>/dev/null; then fail 5 "the agent exited: see $log"; fi
  sleep 1; i=$((i + 1))
done
if [ -s "$data/identity.json" ]; then
  id=$(grep -o '"id": *"[^"]*"' "$data/identity.json" | head -n 1 | cut -d'"' -f4)
  echo "outpost-agent enrolled: $id"
else
  say "the agent is running but has not enrolled yet; see $log"
fi
`;
}
