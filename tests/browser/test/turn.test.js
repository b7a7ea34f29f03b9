// Relay-only media through a coturn that the test starts on loopback with a static auth
// secret; the browsers use the time-limited credentials the server hands out in
// `roomReady` (coturn's REST API scheme).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const { room, decodingAll, compat } = require('./harness.js');

async function startCoturn(secret) {
  const port = await compat.freePort();
  const proc = spawn(process.env.TURNSERVER_BIN || '/usr/bin/turnserver', [
    '-n',
    '--listening-ip=127.0.0.1',
    `--listening-port=${port}`,
    '--relay-ip=127.0.0.1',
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    '--realm=kolabmeet.test',
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--fingerprint',
    '--min-port=50000',
    '--max-port=50999',
    '--log-file=stdout',
    '--simple-log',
    '--verbose',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  await compat.eventually(() => /listener opened on|Total General servers/.test(out) || proc.exitCode !== null, 10000, 'coturn to start');
  if (proc.exitCode !== null) throw new Error(`coturn exited: ${out}`);
  return { port, proc, log: () => out, stop: () => proc.kill('SIGTERM') };
}

test('relay-only media through coturn with the server\'s REST credentials', { timeout: 120000 }, async () => {
  const secret = crypto.randomBytes(16).toString('hex');
  const turn = await startCoturn(secret);
  let r;
  try {
    r = await room(2, { relayOnly: true }, {
      TURN_SERVER: `turn:127.0.0.1:${turn.port}?transport=udp`,
      TURN_STATIC_SECRET: secret,
    });
    for (const page of r.pages) await decodingAll(page, { videos: 1, audios: 1, ms: 45000 });
    for (const page of r.pages) {
      const t = await page.evaluate(() => window.kolab.transportStats());
      assert.equal(t.send.localType, 'relay', JSON.stringify(t));
      assert.equal(t.recv.localType, 'relay', JSON.stringify(t));
    }
    // coturn authenticated the server's REST credentials (user "<expiry>:<peerId>").
    for (const page of r.pages) {
      assert.match(turn.log(), new RegExp(`user <\\d+:${page.peer.id}>: incoming packet ALLOCATE processed, success`));
    }
  } finally {
    if (r) await r.close();
    turn.stop();
  }
});
