#!/usr/bin/env bash
# One-node KRaft Apache Kafka broker on 127.0.0.1, from Maven Central jars.
#
#   kafka-local.sh start|stop|status|fetch
#
# Settings (environment):
#   DRIFTLINE_KAFKA_HOME     state, logs and pid   (default ~/.cache/driftline/kafka)
#   DRIFTLINE_KAFKA_PORT     client port           (default 9092; controller uses port+1)
#   DRIFTLINE_KAFKA_HEAP     JVM heap              (default 512m)
#   DRIFTLINE_KAFKA_TIMEOUT  start deadline, s     (default 90)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
home="${DRIFTLINE_KAFKA_HOME:-$HOME/.cache/driftline/kafka}"
libs="$HOME/.cache/driftline/kafka-$version/libs"
port="${DRIFTLINE_KAFKA_PORT:-9092}"
cport=$((port + 1))
heap="${DRIFTLINE_KAFKA_HEAP:-512m}"
timeout="${DRIFTLINE_KAFKA_TIMEOUT:-90}"
pidfile="$home/broker.pid"
logfile="$home/broker.log"
props="$home/server.properties"

die() { echo "kafka-local: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid; pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

fetch() {
  # A marker file, written last, tells a complete download from an interrupted one.
  if [[ -f "$libs/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is required to fetch the Kafka $version jars"
  echo "kafka-local: fetching Apache Kafka $version jars from Maven Central into $libs" >&2
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >&2 \
    || die "mvn dependency:copy-dependencies failed for Kafka $version"
  touch "$libs/.complete"
}

write_props() {
  cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$home/data
num.partitions=1
# driftline creates its topics with the partition counts it needs; a typo must not make one.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=4194304
PROPS
}

java_cmd=(java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -XX:MaxInlineLevel=15 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$libs/*")

start() {
  if pid="$(running_pid)"; then echo "kafka-local: already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  if port_open "$port"; then die "port $port is taken by another process; set DRIFTLINE_KAFKA_PORT"; fi
  command -v java >/dev/null || die "java (17+) is required to run the broker"
  fetch
  mkdir -p "$home"
  write_props
  if [[ ! -f "$home/data/meta.properties" ]]; then
    # Cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
    local cid
    cid="A$(head -c 15 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | head -c 21)"
    "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cid" -c "$props" >"$home/format.log" 2>&1 \
      || { tail -20 "$home/format.log" >&2; die "storage format failed"; }
  fi
  : > "$logfile"
  nohup "${java_cmd[@]}" kafka.Kafka "$props" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + timeout))
  until grep -q "Kafka Server started" "$logfile" && port_open "$port"; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "---- last lines of $logfile ----" >&2; tail -30 "$logfile" >&2
      die "broker exited during start-up"
    fi
    if (( SECONDS >= deadline )); then
      echo "---- last lines of $logfile ----" >&2; tail -30 "$logfile" >&2
      die "broker not ready after ${timeout}s"
    fi
    sleep 0.2
  done
  echo "kafka-local: Apache Kafka $version ready on 127.0.0.1:$port (pid $(cat "$pidfile"), log $logfile)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then echo "kafka-local: not running"; rm -f "$pidfile"; return 0; fi
  kill "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then kill -9 "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  echo "kafka-local: stopped (pid $pid)"
}

status() {
  if pid="$(running_pid)"; then
    port_open "$port" && { echo "kafka-local: running (pid $pid) on 127.0.0.1:$port"; return 0; }
    echo "kafka-local: process $pid alive but port $port closed"; return 2
  fi
  echo "kafka-local: not running"; return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  *) die "usage: kafka-local.sh start|stop|status|fetch" ;;
esac
