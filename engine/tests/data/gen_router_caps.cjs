// Regenerates router_rtp_capabilities.json from mediasoup v3 itself (the golden file of
// engine/tests/router_capabilities.rs):
//   mkdir /tmp/ms && cd /tmp/ms && npm install --ignore-scripts mediasoup@3
//   cp <this file> . && node gen_router_caps.cjs > router_rtp_capabilities.json
const ortc = require(require('path').join(__dirname,'node_modules/mediasoup/node/lib/ortc.js'));
const mediaCodecs = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 2, 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/h264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '4d0032', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/h264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 } },
];
console.log(JSON.stringify(ortc.generateRouterRtpCapabilities(mediaCodecs), null, 2));
