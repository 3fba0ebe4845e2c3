#!/usr/bin/env bash
# Oracle captures for the dataplane tests: builds client/node/backend network namespaces, lets the
# Linux kernel (iptables DNAT/REJECT in the node's own netns) translate Service traffic, captures
# both legs with tcpdump and writes basic-in.pcap, basic-kernel-out.pcap and basic.yaml.
#
# Re-run (as root, from anywhere; takes ~2 s; idempotent, removes everything it made on exit,
# also when it fails or is interrupted):
#     sudo bash test/pcap/make-captures.sh            # writes into test/pcap/ (next to this script)
#     sudo bash test/pcap/make-captures.sh OUTDIR     # writes into OUTDIR instead
#     KEEP_RAW=1 sudo -E bash test/pcap/make-captures.sh   # also keeps the two raw leg captures
# Needs: iproute2, iptables, ethtool, tcpdump, wireshark-common (mergecap/editcap), iputils-ping,
# curl, python3. It only ever touches the namespaces tvcap-client, tvcap-node, tvcap-backend
# (and what lives inside them); host interfaces, routes and firewall rules are never changed.
#
# Topology (all MACs and IPs fixed, ARP replaced by static neighbours, IPv6 disabled, TCP
# timestamps off, checksum offload off so that captured checksums are the real ones):
#
#   tvcap-client            tvcap-node                                   tvcap-backend
#   eth0 10.244.0.5 ===== tvc-cli 10.244.0.1 | tvc-be 10.244.1.1 ===== eth0 10.244.1.10
#   02:00:0a:f4:00:05     02:00:0a:f4:00:01  | 02:00:0a:f4:01:01       02:00:0a:f4:01:0a
#                         ("outside" leg)    | ("inside" leg)          http-ish :8080, udp echo :5353
#                         tvc-up0 192.0.2.1 = default route (uplink; peer tvc-up1 is also in the node)
#
#   Services (iptables in tvcap-node, kube-proxy style):
#     TCP 10.96.0.10:80 -> DNAT 10.244.1.10:8080      UDP 10.96.0.10:53 -> DNAT 10.244.1.10:5353
#     TCP 10.96.0.11:80 -> no endpoints -> REJECT --reject-with icmp-port-unreachable
#
#   Client traffic, in order: curl GET http://10.96.0.10/ (src port 40080); two DNS A queries
#   (ids 1 and 2) to 10.96.0.10:53 (src port 40053), each echoed back verbatim by the backend; TCP
#   connect to 10.96.0.11:80 (src port 40081, refused by the ICMP); ping -c1 10.244.1.10 (id 4660,
#   8-byte "tvcaping" payload; plain routed, non-service traffic). The backend closes after the
#   client, so each file has 17 frames on every run; what differs between runs is only the TCP
#   initial sequence numbers, the IP IDs and the gaps between timestamps.
#
# Outputs (classic pcap, LINKTYPE_ETHERNET, microseconds; timestamps shifted so that the first
# captured frame is at 1700000000.000000 in both files, keeping the real gaps):
#   basic-in.pcap          frames entering the node = what a service proxy at the node receives:
#                          client->VIP (and the ping) from the outside leg + backend->client from
#                          the inside leg, merged by time.
#   basic-kernel-out.pcap  frames the node emitted after translation: client->backend (DNATed, and
#                          the forwarded ping) on the inside leg + VIP->client (un-DNATed replies,
#                          the ICMP port unreachable, the forwarded ping reply) on the outside leg.
#   basic.yaml             Service/Endpoints manifests for the same services.
set -euo pipefail

OUT_DIR="${1:-$(cd "$(dirname "$0")" && pwd)}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

NS_C=tvcap-client
NS_N=tvcap-node
NS_B=tvcap-backend

CLIENT_IP=10.244.0.5;   CLIENT_MAC=02:00:0a:f4:00:05
NODE_C_IP=10.244.0.1;   NODE_C_MAC=02:00:0a:f4:00:01   # node, client-facing (outside leg)
NODE_B_IP=10.244.1.1;   NODE_B_MAC=02:00:0a:f4:01:01   # node, backend-facing (inside leg)
BACKEND_IP=10.244.1.10; BACKEND_MAC=02:00:0a:f4:01:0a
UP_IP=192.0.2.1;        UP_MAC=02:00:c0:00:02:01
UP_GW=192.0.2.254;      UP_GW_MAC=02:00:c0:00:02:fe
VIP=10.96.0.10
VIP_NOEP=10.96.0.11
BASE_EPOCH=1700000000

PY="$(command -v /usr/bin/python3 || command -v python3)"

if [ "$(id -u)" -ne 0 ]; then
  echo "make-captures: must run as root" >&2
  exit 1
fi
for tool in ip iptables ethtool tcpdump mergecap editcap curl ping "$PY"; do
  command -v "$tool" >/dev/null || { echo "make-captures: missing tool: $tool" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/tvcap.XXXXXX)"
PIDS=()

cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for ns in "$NS_C" "$NS_N" "$NS_B"; do
    ip netns del "$ns" 2>/dev/null
  done
  if [ "${KEEP_RAW:-0}" = 1 ] && [ -f "$WORK/outside.pcap" ]; then
    cp "$WORK/outside.pcap" "$OUT_DIR/raw-outside.pcap"
    cp "$WORK/inside.pcap" "$OUT_DIR/raw-inside.pcap"
  fi
  rm -rf "$WORK"
  [ "$rc" -eq 0 ] || echo "make-captures: FAILED (exit $rc); namespaces removed" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- namespaces (a leftover from an interrupted run is removed first) --------------------------
for ns in "$NS_C" "$NS_N" "$NS_B"; do
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  in_ns "$ns" ip link set lo up
done
in_ns "$NS_N" sysctl -qw net.ipv4.ip_forward=1
for ns in "$NS_C" "$NS_B"; do
  in_ns "$ns" sysctl -qw net.ipv4.tcp_timestamps=0 net.ipv4.tcp_ecn=0
done

# veths are created directly inside the namespaces (never in the host's namespace)
ip -n "$NS_C" link add eth0 address "$CLIENT_MAC" type veth peer name tvc-cli address "$NODE_C_MAC" netns "$NS_N"
ip -n "$NS_B" link add eth0 address "$BACKEND_MAC" type veth peer name tvc-be address "$NODE_B_MAC" netns "$NS_N"
ip -n "$NS_N" link add tvc-up0 address "$UP_MAC" type veth peer name tvc-up1 address "$UP_GW_MAC"

ip -n "$NS_C" addr add "$CLIENT_IP/24" dev eth0
ip -n "$NS_N" addr add "$NODE_C_IP/24" dev tvc-cli
ip -n "$NS_N" addr add "$NODE_B_IP/24" dev tvc-be
ip -n "$NS_N" addr add "$UP_IP/24" dev tvc-up0
ip -n "$NS_B" addr add "$BACKEND_IP/24" dev eth0

for pair in "$NS_C eth0" "$NS_N tvc-cli" "$NS_N tvc-be" "$NS_N tvc-up0" "$NS_N tvc-up1" "$NS_B eth0"; do
  set -- $pair
  # software checksums (no CHECKSUM_PARTIAL skbs in the captures), no segmentation offloads
  in_ns "$1" ethtool -K "$2" tx off sg off tso off gso off gro off >/dev/null
  ip -n "$1" link set "$2" up
done

ip -n "$NS_C" route add default via "$NODE_C_IP" dev eth0
ip -n "$NS_B" route add default via "$NODE_B_IP" dev eth0
ip -n "$NS_N" route add default via "$UP_GW" dev tvc-up0

# static neighbours: no ARP in the captures
ip -n "$NS_C" neigh add "$NODE_C_IP" lladdr "$NODE_C_MAC" dev eth0 nud permanent
ip -n "$NS_N" neigh add "$CLIENT_IP" lladdr "$CLIENT_MAC" dev tvc-cli nud permanent
ip -n "$NS_N" neigh add "$BACKEND_IP" lladdr "$BACKEND_MAC" dev tvc-be nud permanent
ip -n "$NS_N" neigh add "$UP_GW" lladdr "$UP_GW_MAC" dev tvc-up0 nud permanent
ip -n "$NS_B" neigh add "$NODE_B_IP" lladdr "$NODE_B_MAC" dev eth0 nud permanent

# --- kube-proxy-like rules, in the node namespace only ------------------------------------------
ipt() { in_ns "$NS_N" iptables -w "$@"; }
ipt -t nat -N KUBE-SERVICES
ipt -t nat -A PREROUTING -j KUBE-SERVICES
ipt -t nat -A KUBE-SERVICES -d "$VIP/32" -p tcp --dport 80 \
  -m comment --comment "default/web:http" -j DNAT --to-destination "$BACKEND_IP:8080"
ipt -t nat -A KUBE-SERVICES -d "$VIP/32" -p udp --dport 53 \
  -m comment --comment "default/web:dns" -j DNAT --to-destination "$BACKEND_IP:5353"
ipt -t filter -N KUBE-SERVICES
ipt -t filter -A FORWARD -m conntrack --ctstate NEW -j KUBE-SERVICES
ipt -t filter -A INPUT -m conntrack --ctstate NEW -j KUBE-SERVICES
ipt -t filter -A KUBE-SERVICES -d "$VIP_NOEP/32" -p tcp --dport 80 \
  -m comment --comment "default/empty:http has no endpoints" -j REJECT --reject-with icmp-port-unreachable

# --- backend servers -----------------------------------------------------------------------------
cat >"$WORK/http.py" <<'EOF'
import socket, sys
body = b"hello from 10.244.1.10:8080\n"
resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s") % (len(body), body)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(8)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    req = b""
    try:
        while b"\r\n\r\n" not in req:
            d = c.recv(4096)
            if not d: break
            req += d
        c.sendall(resp)
        # close only after the client did (curl closes first on Connection: close), so that
        # the FIN order, and the frame count, is the same on every run
        while c.recv(4096): pass
    except OSError:
        pass
    c.close()
EOF
cat >"$WORK/udpecho.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
EOF
cat >"$WORK/client.py" <<'EOF'
import socket, struct, sys
vip, vip_noep = sys.argv[1], sys.argv[2]
def dns_query(qid, name):  # a well-formed DNS A query, so that decoders do not flag the payload
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 40053)); u.settimeout(3)
for q in (dns_query(1, "web.default.svc.cluster.local"), dns_query(2, "empty.default.svc.cluster.local")):
    u.sendto(q, (vip, 53))
    d, a = u.recvfrom(2048)
    assert d == q and a == (vip, 53), (d, a)
u.close()
print("udp: 2 echoes from %s:53" % vip)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 40081)); t.settimeout(3)
try:
    t.connect((vip_noep, 80))
    sys.exit("tcp connect to %s:80 unexpectedly succeeded" % vip_noep)
except ConnectionRefusedError:
    print("tcp: %s:80 refused" % vip_noep)
EOF

# (plain `ip netns exec` in the background: $! is then the server's own pid, ip execs it)
ip netns exec "$NS_B" "$PY" "$WORK/http.py" "$BACKEND_IP" & PIDS+=($!)
ip netns exec "$NS_B" "$PY" "$WORK/udpecho.py" "$BACKEND_IP" & PIDS+=($!)
for _ in $(seq 100); do
  if in_ns "$NS_B" ss -Hltn "sport = :8080" | grep -q . && in_ns "$NS_B" ss -Hlun "sport = :5353" | grep -q .; then
    break
  fi
  sleep 0.05
done
in_ns "$NS_B" ss -Hltn "sport = :8080" | grep -q . || { echo "make-captures: backend did not start" >&2; exit 1; }

# --- capture both legs -----------------------------------------------------------------------------
start_capture() { # iface file
  ip netns exec "$NS_N" tcpdump -i "$1" -w "$2" -s 262144 -U --immediate-mode -Z root -nn 2>"$2.log" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$2.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "make-captures: tcpdump on $1 did not start: $(cat "$2.log")" >&2; exit 1
}
start_capture tvc-cli "$WORK/outside.pcap"; CAP_OUT=${PIDS[-1]}
start_capture tvc-be "$WORK/inside.pcap"; CAP_IN=${PIDS[-1]}
sleep 0.2

# --- client traffic --------------------------------------------------------------------------------
body="$(in_ns "$NS_C" curl -sS --max-time 5 --local-port 40080 -A tvcap-client "http://$VIP/")"
[ "$body" = "hello from 10.244.1.10:8080" ] || { echo "make-captures: bad HTTP body: $body" >&2; exit 1; }
echo "http: GET http://$VIP/ -> $body"
sleep 0.2
in_ns "$NS_C" "$PY" "$WORK/client.py" "$VIP" "$VIP_NOEP"
sleep 0.2
in_ns "$NS_C" ping -nq -c 1 -W 2 -e 4660 -s 8 -p 7476636170696e67 "$BACKEND_IP" | grep -q " 0% packet loss" || { echo "make-captures: ping failed" >&2; exit 1; }
echo "icmp: ping $BACKEND_IP ok"
sleep 0.5

# SIGTERM, not SIGINT: background jobs of a non-interactive shell ignore SIGINT
for pid in "$CAP_OUT" "$CAP_IN"; do kill -TERM "$pid"; wait "$pid" || true; done

# --- split by direction (ether src tells who sent a frame on each leg) and merge ------------------
tcpdump -r "$WORK/outside.pcap" -w "$WORK/out-from-client.pcap" "ether src $CLIENT_MAC" 2>/dev/null
tcpdump -r "$WORK/outside.pcap" -w "$WORK/out-to-client.pcap" "ether src $NODE_C_MAC" 2>/dev/null
tcpdump -r "$WORK/inside.pcap" -w "$WORK/in-from-backend.pcap" "ether src $BACKEND_MAC" 2>/dev/null
tcpdump -r "$WORK/inside.pcap" -w "$WORK/in-to-backend.pcap" "ether src $NODE_B_MAC" 2>/dev/null

count() { tcpdump -r "$1" 2>/dev/null | wc -l; }
n_out=$(count "$WORK/outside.pcap"); n_in=$(count "$WORK/inside.pcap")
n_split=$(( $(count "$WORK/out-from-client.pcap") + $(count "$WORK/out-to-client.pcap") \
          + $(count "$WORK/in-from-backend.pcap") + $(count "$WORK/in-to-backend.pcap") ))
if [ "$n_split" -ne $(( n_out + n_in )) ]; then
  echo "make-captures: unexpected frames on the legs ($n_split of $((n_out + n_in)) classified)" >&2
  tcpdump -nn -e -r "$WORK/outside.pcap" >&2; tcpdump -nn -e -r "$WORK/inside.pcap" >&2
  exit 1
fi

mergecap -F pcap -w "$WORK/in.pcap" "$WORK/out-from-client.pcap" "$WORK/in-from-backend.pcap"
mergecap -F pcap -w "$WORK/kout.pcap" "$WORK/in-to-backend.pcap" "$WORK/out-to-client.pcap"

# shift both files by the same amount: the first frame of the whole run lands on BASE_EPOCH
first_us() {
  local ts; ts=$(tcpdump -tt -c 1 -r "$1" 2>/dev/null | cut -d' ' -f1)
  echo $(( ${ts%.*} * 1000000 + 10#${ts#*.} ))
}
f1=$(first_us "$WORK/outside.pcap"); f2=$(first_us "$WORK/inside.pcap")
first=$(( f1 < f2 ? f1 : f2 ))
delta=$(( BASE_EPOCH * 1000000 - first ))
sign=""; [ "$delta" -lt 0 ] && { sign="-"; delta=$(( -delta )); }
shift_arg=$(printf '%s%d.%06d' "$sign" $(( delta / 1000000 )) $(( delta % 1000000 )))
editcap -F pcap -t "$shift_arg" "$WORK/in.pcap" "$OUT_DIR/basic-in.pcap"
editcap -F pcap -t "$shift_arg" "$WORK/kout.pcap" "$OUT_DIR/basic-kernel-out.pcap"

# --- manifests ------------------------------------------------------------------------------------
cat >"$OUT_DIR/basic.yaml" <<EOF
# Services behind test/pcap/basic-in.pcap and basic-kernel-out.pcap (written by make-captures.sh).
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: ClusterIP
  clusterIP: $VIP
  clusterIPs:
    - $VIP
  selector:
    app: web
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 8080
    - name: dns
      protocol: UDP
      port: 53
      targetPort: 5353
---
apiVersion: v1
kind: Endpoints
metadata:
  name: web
  namespace: default
subsets:
  - addresses:
      - ip: $BACKEND_IP
    ports:
      - name: http
        protocol: TCP
        port: 8080
      - name: dns
        protocol: UDP
        port: 5353
---
apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
spec:
  type: ClusterIP
  clusterIP: $VIP_NOEP
  clusterIPs:
    - $VIP_NOEP
  selector:
    app: empty
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: empty
  namespace: default
subsets: []
EOF

echo "make-captures: wrote $OUT_DIR/basic-in.pcap ($(count "$OUT_DIR/basic-in.pcap") frames)," \
     "$OUT_DIR/basic-kernel-out.pcap ($(count "$OUT_DIR/basic-kernel-out.pcap") frames), $OUT_DIR/basic.yaml"
