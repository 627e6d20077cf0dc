// The AWS SDK v3 clients the KVS WebRTC SDK's examples use, exported as they export them
// (examples/aws-sdk-*-kvswebrtc.js, built from the SDK repository's aws-sdk-build/index.js):
// `npm run build` bundles this file into window.AWS.KinesisVideo and
// window.AWS.KinesisVideoSignaling for kvs_js.html.
export * as KinesisVideo from "@aws-sdk/client-kinesis-video";
export * as KinesisVideoSignaling from "@aws-sdk/client-kinesis-video-signaling";
