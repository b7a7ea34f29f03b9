// Issue 10 with real parts: two Chromium participants (webcam + microphone each) in one
// room; the server's `GET /metrics` passes Debian's `promtool check metrics` and counts
// their producers, consumers and traffic; a real Prometheus server started here scrapes
// it (1 s interval, the API token as its bearer credentials) and answers a query for the
// rooms gauge; `GET /meetmedia/api/stats` carries each peer's transport, producer and
// consumer stats; the console's `dumpWorkers` names the worker's room and transports.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { room, decodingAll, compat, consoleLine } = require('./harness.js');

const PROMTOOL = process.env.PROMTOOL_BIN || '/usr/bin/promtool';
const PROMETHEUS = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';

async function metrics(server, headers = { Authorization: `Bearer ${server.token}` }) {
  const r = await fetch(`${server.base}/metrics`, { headers });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

/** The value of one series (`name{labels}` exactly as written) in a text exposition. */
function sample(text, series) {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function sum(text, prefix) {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) total += Number(line.split(' ').pop());
  }
  return total;
}

/** Starts Prometheus scraping `server` every second; { url, stop }. */
async function startPrometheus(server) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-prometheus-'));
  const port = await compat.freePort();
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: kolabmeet',
      '    metrics_path: /metrics',
      '    authorization:',
      `      credentials: ${server.token}`,
      '    static_configs:',
      `      - targets: ['127.0.0.1:${server.port}']`,
      '',
    ].join('\n'),
  );
  const proc = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proc.stderr.on('data', (d) => (log += d));
  const exited = new Promise((r) => proc.on('exit', r));
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('metrics, stats and dumpWorkers of a room with media, scraped by Prometheus', { timeout: 180000 }, async () => {
  const r = await room(2);
  let prom;
  try {
    for (const page of r.pages) await decodingAll(page, { videos: 1, audios: 1 });
    const server = r.server;

    // Protected like the API.
    assert.equal((await metrics(server, {})).status, 403);
    assert.equal((await metrics(server, { Authorization: 'Bearer wrong' })).status, 403);
    assert.equal((await metrics(server, { 'X-Auth-Token': server.token })).status, 200);

    // The workers publish once a second: wait for both peers' media in the snapshot.
    let m;
    await compat.eventually(
      async () => {
        m = await metrics(server);
        return (
          sample(m.text, 'kolabmeet_consumers{kind="video"}') === 2 &&
          sample(m.text, 'kolabmeet_consumers{kind="audio"}') === 2 &&
          sample(m.text, 'kolabmeet_producers{kind="video"}') === 2 &&
          sample(m.text, 'kolabmeet_producers{kind="audio"}') === 2 &&
          sample(m.text, 'kolabmeet_transports{kind="webrtc",state="connected"}') === 4
        );
      },
      30000,
      'the media of both peers in /metrics',
    ).catch((e) => {
      throw new Error(`${e.message}\n${m && m.text}`);
    });
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(m.text, 'kolabmeet_rooms'), 1);
    assert.equal(sample(m.text, 'kolabmeet_peers'), 2);
    assert.ok(sum(m.text, 'kolabmeet_worker_packets_total{worker="0",direction="in"}') > 100, m.text);
    assert.ok(sum(m.text, 'kolabmeet_worker_bytes_total{worker="0",direction="out"}') > 10000, m.text);
    assert.ok(sample(m.text, 'kolabmeet_worker_busy_seconds_total{worker="0"}') > 0, m.text);
    assert.ok(sample(m.text, 'kolabmeet_control_loop_busy_seconds_total') > 0, m.text);
    assert.equal(sample(m.text, 'kolabmeet_signaling_connections_total{outcome="accepted"}'), 2);
    assert.ok(sample(m.text, 'kolabmeet_signaling_requests_total{outcome="ok",code="200"}') >= 10, m.text);
    assert.ok(sample(m.text, 'kolabmeet_signaling_sockets') >= 2, m.text);

    // Debian's promtool accepts the exposition (format and lint).
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}\n${m.text}`);

    // GET /meetmedia/api/stats: each peer with the stats of its media.
    const stats = (await compat.api(server, 'GET', '/meetmedia/api/stats')).json;
    assert.equal(stats.rooms.length, 1);
    const peers = stats.rooms[0].peers;
    assert.deepEqual(peers.map((p) => p.nickname).sort(), ['p0', 'p1']);
    for (const p of peers) {
      assert.equal(p.transports.length, 2, JSON.stringify(p));
      for (const t of p.transports) {
        assert.equal(t.state, 'connected', JSON.stringify(t));
        assert.ok(t.estimateBps > 0, JSON.stringify(t));
      }
      assert.equal(p.producers.length, 2, JSON.stringify(p));
      for (const pr of p.producers) {
        assert.ok(pr.packetsReceived > 0 && pr.bytesReceived > 0, JSON.stringify(pr));
        assert.ok(pr.bitrateBps > 0, JSON.stringify(pr));
        assert.ok(pr.scores.length >= 1, JSON.stringify(pr));
      }
      assert.equal(p.consumers.length, 2, JSON.stringify(p));
      for (const c of p.consumers) {
        assert.ok(c.packetsSent > 0 && c.bytesSent > 0, JSON.stringify(c));
        assert.ok(c.score >= 0 && c.score <= 10, JSON.stringify(c));
        assert.ok(c.loss >= 0 && c.loss <= 1, JSON.stringify(c));
        if (c.kind === 'video') assert.equal(typeof c.currentLayer, 'number', JSON.stringify(c));
      }
    }

    // The console tells the truth about the worker.
    const dump = await consoleLine(server, 'dumpWorkers');
    assert.match(dump, /^every media worker runs/);
    assert.match(dump, /worker 0 port:\d+ rooms:1 transports:4 \(connected:4\) producers:4 consumers:4 packetsIn:[1-9]/, dump);
    assert.ok(dump.includes(`room ${r.roomId}`), dump);

    // A real Prometheus scrapes the server and answers a query.
    prom = await startPrometheus(server);
    let last;
    await compat.eventually(
      async () => {
        try {
          const q = await fetch(`${prom.url}/api/v1/query?query=kolabmeet_rooms`);
          last = await q.json();
          const v = last.data && last.data.result[0];
          return v && v.value[1] === '1';
        } catch {
          return false;
        }
      },
      60000,
      'Prometheus to have scraped kolabmeet_rooms = 1',
    ).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(last)}\n${prom.log()}`);
    });
    const q = await (
      await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent('sum(kolabmeet_consumers)')}`)
    ).json();
    assert.equal(q.data.result[0].value[1], '4', JSON.stringify(q));
  } finally {
    if (prom) await prom.stop();
    await r.close();
  }
});
