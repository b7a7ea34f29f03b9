// Regenerates ortc_cases.json from mediasoup v3's own ortc.js (the golden file of
// engine/tests/ortc_mapping.rs):
//   mkdir /tmp/ms && cd /tmp/ms && npm install --ignore-scripts mediasoup@3
//   cp <this file> router_rtp_capabilities.json . && node gen_ortc_cases.cjs > ortc_cases.json
// Random SSRCs are replaced by a counter starting at 100000000 for every call, which the
// Rust side passes explicitly.
const path = require('path');
const lib = path.join(__dirname, 'node_modules/mediasoup/node/lib');
const utils = require(path.join(lib, 'utils.js'));
let next = 0;
utils.generateRandomNumber = () => next++;
const ortc = require(path.join(lib, 'ortc.js'));
const routerCaps = require('./router_rtp_capabilities.json');
const clone = (x) => JSON.parse(JSON.stringify(x));

const ext = (uri, id) => ({ uri, id, encrypt: false, parameters: {} });
const MID = 'urn:ietf:params:rtp-hdrext:sdes:mid';
const RID = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';
const RRID = 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id';
const AST = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time';
const TCC = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';
const LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
const ORIENT = 'urn:3gpp:video-orientation';
const TOFF = 'urn:ietf:params:rtp-hdrext:toffset';
const fb = (type, parameter = '') => ({ type, parameter });
const videoFb = [fb('goog-remb'), fb('transport-cc'), fb('ccm', 'fir'), fb('nack'), fb('nack', 'pli')];

const producers = {
  vp8Simulcast: { kind: 'video', rtpParameters: {
    mid: '0',
    codecs: [
      { mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: videoFb },
      { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 96 }, rtcpFeedback: [] },
    ],
    headerExtensions: [ext(MID, 4), ext(RID, 10), ext(RRID, 11), ext(AST, 2), ext(TCC, 3), ext(ORIENT, 13), ext(TOFF, 14)],
    encodings: [
      { rid: 'r0', active: true, scalabilityMode: 'L1T3', scaleResolutionDownBy: 2, maxBitrate: 500000 },
      { rid: 'r1', active: true, scalabilityMode: 'L1T3', scaleResolutionDownBy: 1, maxBitrate: 1200000 },
    ],
    rtcp: { cname: 'abcd1234', reducedSize: true },
  } },
  vp8SsrcSimulcast: { kind: 'video', rtpParameters: {
    mid: '1',
    codecs: [
      { mimeType: 'video/VP8', payloadType: 100, clockRate: 90000, parameters: {}, rtcpFeedback: videoFb },
      { mimeType: 'video/rtx', payloadType: 101, clockRate: 90000, parameters: { apt: 100 }, rtcpFeedback: [] },
    ],
    headerExtensions: [ext(MID, 1), ext(AST, 2), ext(TCC, 3)],
    encodings: [
      { ssrc: 1111, rtx: { ssrc: 1112 }, scalabilityMode: 'L1T2' },
      { ssrc: 2222, rtx: { ssrc: 2223 }, scalabilityMode: 'L1T2' },
      { ssrc: 3333, rtx: { ssrc: 3334 }, scalabilityMode: 'L1T2' },
    ],
    rtcp: { cname: 'ssrcsim', reducedSize: true },
  } },
  opus: { kind: 'audio', rtpParameters: {
    mid: '2',
    codecs: [
      { mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { minptime: 10, useinbandfec: 1, usedtx: 1 }, rtcpFeedback: [fb('transport-cc')] },
    ],
    headerExtensions: [ext(MID, 4), ext(AST, 2), ext(TCC, 3), ext(LEVEL, 1)],
    encodings: [{ ssrc: 55555, dtx: true }],
    rtcp: { cname: 'audiocname', reducedSize: true },
  } },
  h264High: { kind: 'video', rtpParameters: {
    mid: '3',
    codecs: [
      { mimeType: 'video/H264', payloadType: 102, clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '4d001f', 'level-asymmetry-allowed': 1 }, rtcpFeedback: videoFb },
      { mimeType: 'video/rtx', payloadType: 103, clockRate: 90000, parameters: { apt: 102 }, rtcpFeedback: [] },
    ],
    headerExtensions: [ext(MID, 4), ext(TCC, 3)],
    encodings: [{ ssrc: 77777, rtx: { ssrc: 77778 } }],
    rtcp: { cname: 'h264', reducedSize: true },
  } },
  h264Baseline: { kind: 'video', rtpParameters: {
    mid: '4',
    codecs: [
      { mimeType: 'video/H264', payloadType: 104, clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e034' }, rtcpFeedback: videoFb },
    ],
    headerExtensions: [ext(MID, 4)],
    encodings: [{ ssrc: 88888 }],
    rtcp: { cname: 'h264b', reducedSize: true },
  } },
  vp9Svc: { kind: 'video', rtpParameters: {
    mid: '5',
    codecs: [
      { mimeType: 'video/VP9', payloadType: 98, clockRate: 90000, parameters: { 'profile-id': 2 }, rtcpFeedback: videoFb },
      { mimeType: 'video/rtx', payloadType: 99, clockRate: 90000, parameters: { apt: 98 }, rtcpFeedback: [] },
    ],
    headerExtensions: [ext(MID, 4), ext(AST, 2)],
    encodings: [{ ssrc: 99999, rtx: { ssrc: 99998 }, scalabilityMode: 'L3T3_KEY', maxBitrate: 2000000 }],
    rtcp: { cname: 'vp9', reducedSize: true },
  } },
  unsupportedCodec: { kind: 'video', rtpParameters: {
    codecs: [{ mimeType: 'video/AV1', payloadType: 45, clockRate: 90000, parameters: {}, rtcpFeedback: [] }],
    headerExtensions: [], encodings: [{ ssrc: 1 }], rtcp: { cname: 'x' },
  } },
  vp9WrongProfile: { kind: 'video', rtpParameters: {
    codecs: [{ mimeType: 'video/VP9', payloadType: 98, clockRate: 90000, parameters: { 'profile-id': 0 }, rtcpFeedback: [] }],
    headerExtensions: [], encodings: [{ ssrc: 1 }], rtcp: { cname: 'x' },
  } },
};

// Devices: what mediasoup-client's Device sends in `join` (its recv capabilities, in the
// router's payload types and extension ids).
const pick = (codecFilter, extFilter) => ({
  codecs: clone(routerCaps.codecs).filter(codecFilter),
  headerExtensions: clone(routerCaps.headerExtensions).filter(extFilter),
});
const devices = {
  full: clone(routerCaps),
  vp8OnlyNoRtxNoTcc: pick(c => /opus|vp8/i.test(c.mimeType), e => e.uri !== TCC),
  h264BaselineOnly: pick(c => /opus/i.test(c.mimeType) || (/h264/i.test(c.mimeType) && c.parameters['profile-level-id'] === '42e01f') || /rtx/i.test(c.mimeType), e => e.uri === MID),
  audioOnly: pick(c => /opus/i.test(c.mimeType), e => e.kind === 'audio'),
};

const cases = [];
for (const [pname, p] of Object.entries(producers)) {
  const params = clone(p.rtpParameters);
  const c = { producer: pname, kind: p.kind, rtpParameters: clone(p.rtpParameters) };
  next = 100000000;
  try {
    c.mapping = ortc.getProducerRtpParametersMapping(params, routerCaps);
    c.mappedRtpParameters = clone(params);
    c.consumable = ortc.getConsumableRtpParameters(p.kind, params, routerCaps, c.mapping);
  } catch (e) {
    c.error = String(e.message);
    cases.push(c);
    continue;
  }
  c.consumers = [];
  for (const [dname, caps] of Object.entries(devices)) {
    for (const enableRtx of [true, false]) {
      const r = { device: dname, enableRtx, canConsume: ortc.canConsume(c.consumable, clone(caps)) };
      next = 200000000;
      try {
        r.params = ortc.getConsumerRtpParameters({ consumableRtpParameters: c.consumable, remoteRtpCapabilities: clone(caps), pipe: false, enableRtx });
      } catch (e) {
        r.error = String(e.message);
      }
      c.consumers.push(r);
    }
  }
  cases.push(c);
}
console.log(JSON.stringify({ devices, cases }, null, 1));
