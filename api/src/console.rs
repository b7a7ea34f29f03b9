//! The operator console (contract section 7): one command per line over the unix socket,
//! answered as text. `connect` is its client.

use std::time::Duration;

use kolabmeet_engine::RoomId;
use kolabmeet_engine::bandwidth_stats::{ConsumerLayerStats, TransportBandwidthStats};
use kolabmeet_signaling::control::ControlPlane;

use crate::logging::LogControl;

/// `help` text.
pub const HELP: &str = "commands:
  help                     this list
  usage                    CPU and memory of the server process
  stats                    rooms:<n> and peers:<n>
  dumpRooms                every room
  dumpPeers                every peer
  dumpWorkers              the media workers
  dumpInternals            sizes of the server's internal tables
  dumpRouter [id]          a router (a room) or all
  dumpTransport [id]       a transport's bandwidth estimate and consumers' layers, or all
  dumpProducer [id]        (not available: use statsRoom)
  dumpConsumer [id]        a consumer's current and target layers, or all
  statsRoom <id>           a room's stats as JSON
  statsTransport [id]      like dumpTransport, as JSON
  statsProducer [id]       (not available: use statsRoom)
  statsConsumer [id]       like dumpConsumer, as JSON
  logLevel <level>         error, warn, info, debug or trace
  logTags <tags>           comma-separated debug tags (ice,dtls,rtp,...) or none
  quit                     close the console";

/// Linux reports CPU times in /proc in units of USER_HZ, which is 100 on every
/// architecture's user ABI.
const USER_HZ: f64 = 100.0;

/// `usage`: CPU seconds and resident memory of this process, from /proc.
pub fn usage(uptime_secs: f64) -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    let (user, system) = (ticks(11) / USER_HZ, ticks(12) / USER_HZ);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    let cpu_pct = if uptime_secs > 0.0 {
        (user + system) / uptime_secs * 100.0
    } else {
        0.0
    };
    format!(
        "cpu: user {user:.2}s system {system:.2}s ({cpu_pct:.1}% of one core since start)\nmemory: rss {} (peak {})\nthreads: {}",
        field("VmRSS:"),
        field("VmHWM:"),
        field("Threads:")
    )
}

/// `dumpTransport` / `statsTransport [id]`: each transport's estimate and its consumers'
/// layers (one transport when `id` is given), as text lines or JSON.
fn transports(all: &[TransportBandwidthStats], id: Option<&str>, json: bool) -> String {
    let chosen: Vec<&TransportBandwidthStats> = all
        .iter()
        .filter(|t| id.is_none_or(|id| t.transport_id.to_string() == id))
        .collect();
    if chosen.is_empty() {
        return match id {
            Some(id) => format!("no transport {id} sending media"),
            None => "no transport sends media".to_owned(),
        };
    }
    if json {
        return serde_json::to_string_pretty(&chosen).unwrap_or_default();
    }
    let mut out = String::new();
    for t in chosen {
        out.push_str(&format!(
            "transport {} peer {} room {} worker {}: estimate {} kbit/s, wanted {} kbit/s, acked {} kbit/s, loss {:.1}%, delay {}{}\n",
            t.transport_id,
            t.peer_id,
            t.room_id,
            t.worker,
            t.estimate_bps / 1000,
            t.desired_bps / 1000,
            t.acked_bps.map_or("-".to_owned(), |b| (b / 1000).to_string()),
            t.loss * 100.0,
            t.delay_trend,
            if t.trial_bps > 0 {
                format!(", up-switch on trial: padding {} kbit/s", t.trial_bps / 1000)
            } else {
                String::new()
            }
        ));
        for c in &t.consumers {
            out.push_str(&format!("  {}\n", consumer_line(c)));
        }
    }
    out.trim_end().to_owned()
}

fn consumer_line(c: &ConsumerLayerStats) -> String {
    let layer = |l: Option<u8>| l.map_or("-".to_owned(), |l| l.to_string());
    format!(
        "consumer {} {:?}: layer {}/{} target {} allocation {}{} packets {} score {}",
        c.consumer_id,
        c.kind,
        layer(c.current_layer),
        layer(c.current_temporal_layer),
        layer(c.target_layer),
        c.allocation,
        if c.paused { " (paused)" } else { "" },
        c.packets_sent,
        c.score
    )
}

/// `dumpConsumer` / `statsConsumer [id]`: each consumer's layers.
fn consumers(all: &[TransportBandwidthStats], id: Option<&str>, json: bool) -> String {
    let chosen: Vec<&ConsumerLayerStats> = all
        .iter()
        .flat_map(|t| &t.consumers)
        .filter(|c| id.is_none_or(|id| c.consumer_id.to_string() == id))
        .collect();
    if chosen.is_empty() {
        return match id {
            Some(id) => format!("no consumer {id}"),
            None => "no consumers".to_owned(),
        };
    }
    if json {
        return serde_json::to_string_pretty(&chosen).unwrap_or_default();
    }
    chosen
        .into_iter()
        .map(consumer_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `dumpWorkers` (contract section 7): whether every worker runs, then one line per
/// running worker from its last snapshot (at most a second old): its port, rooms,
/// transports, producers and consumers, traffic, busy share and queue.
fn dump_workers(control: &ControlPlane) -> String {
    let mut out = match control.media_health() {
        kolabmeet_engine::EngineHealth::Healthy => "every media worker runs".to_owned(),
        kolabmeet_engine::EngineHealth::Degraded(why) => why,
    };
    for w in control.worker_stats() {
        let connected = w
            .transports
            .iter()
            .filter(|t| t.state == "connected")
            .count();
        out.push_str(&format!(
            "\nworker {} port:{} rooms:{} transports:{} (connected:{}) producers:{} consumers:{} packetsIn:{} packetsOut:{} bytesIn:{} bytesOut:{} busySeconds:{:.3} commandQueue:{} transportPanics:{} pipeSent:{} pipeReceived:{} pipeDroppedFull:{} pipeDroppedStale:{} shedLevel:{}",
            w.worker,
            w.port,
            w.rooms.len(),
            w.transports.len(),
            connected,
            w.producers.len(),
            w.consumers.len(),
            w.packets_in,
            w.packets_out,
            w.bytes_in,
            w.bytes_out,
            w.busy_seconds,
            w.command_queue,
            w.transport_panics,
            w.pipes.sent,
            w.pipes.received,
            w.pipes.dropped_full,
            w.pipes.dropped_stale,
            w.shed_level,
        ));
        for room in &w.rooms {
            out.push_str(&format!("\n  room {room}"));
            if let Some(d) = w.room_details.iter().find(|d| d.room_id == *room) {
                out.push_str(&format!(
                    " peers:{} transports:{} mirroredProducers:{}",
                    d.peers, d.transports, d.mirrored_producers
                ));
            }
        }
    }
    out
}

/// Runs one console line against the control plane and the log filter (`uptime` is the
/// server's, for `usage`); `None` closes the console connection.
pub fn execute(
    control: &ControlPlane,
    log: &mut LogControl,
    uptime: Duration,
    line: &str,
) -> Option<String> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Some(String::new());
    };
    let arg = words.next();
    Some(match cmd {
        "help" | "h" | "?" => HELP.to_owned(),
        "quit" | "exit" => return None,
        "usage" => usage(uptime.as_secs_f64()),
        "stats" => {
            let (rooms, peers) = control.counts();
            format!("rooms:{rooms}\npeers:{peers}")
        }
        "dumpRooms" => control.dump_rooms().trim_end().to_owned(),
        "dumpPeers" => control.dump_peers().trim_end().to_owned(),
        "dumpWorkers" => dump_workers(control),
        "dumpInternals" => control.internal_counts(),
        "dumpRouter" => match arg {
            None => control.dump_rooms().trim_end().to_owned(),
            Some(id) => match id.parse::<RoomId>() {
                Ok(room) if control.room_exists(&room) => {
                    serde_json::to_string_pretty(&control.room_stats(room)).unwrap_or_default()
                }
                _ => format!("no router {id}"),
            },
        },
        "dumpTransport" | "statsTransport" => {
            transports(&control.bandwidth_stats(), arg, cmd == "statsTransport")
        }
        "dumpConsumer" | "statsConsumer" => {
            consumers(&control.bandwidth_stats(), arg, cmd == "statsConsumer")
        }
        "dumpProducer" | "statsProducer" => {
            "producer stats are not available here; statsRoom <id> lists a room's producers"
                .to_owned()
        }
        "statsRoom" => match arg.map(|a| a.parse::<RoomId>()) {
            None => "usage: statsRoom <roomId>".to_owned(),
            Some(Ok(room)) if control.room_exists(&room) => {
                serde_json::to_string_pretty(&control.room_stats(room)).unwrap_or_default()
            }
            Some(_) => format!("no room {}", arg.unwrap_or("")),
        },
        "logLevel" => match arg {
            None => "usage: logLevel <error|warn|info|debug|trace>".to_owned(),
            Some(l) => log.set_level(l).unwrap_or_else(|e| format!("error: {e}")),
        },
        "logTags" => {
            let rest: Vec<&str> = line.split_whitespace().skip(1).collect();
            log.set_tags(&rest.join(","))
                .unwrap_or_else(|e| format!("error: {e}"))
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            format!("unknown command {shown:?}; try help")
        }
    })
}
