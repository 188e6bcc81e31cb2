#!/usr/bin/env bash
# Thin wrapper around `platewatch kafka ...` for people who reach for deploy/ first.
#   deploy/kafka/kafka.sh start [--port 9092]   fetch jars (cached), start a detached broker, create topics
#   deploy/kafka/kafka.sh stop                  stop it (SIGTERM, SIGKILL after a timeout)
#   deploy/kafka/kafka.sh topics                create the registry topics on PLATEWATCH_KAFKA_BOOTSTRAP
#   deploy/kafka/kafka.sh status                is it running, and where
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -x "$repo_root/.venv/bin/platewatch" ]]; then
  exec "$repo_root/.venv/bin/platewatch" kafka "$@"
fi
exec platewatch kafka "$@"
