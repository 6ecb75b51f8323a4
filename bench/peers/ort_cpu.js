// ONNX Runtime CPU peer: forward latency of an ONNX image model, same report line as `VitSharp.Bench vit`.
// usage: ORT_DIR=/tmp/ort node ort_cpu.js model.onnx batch reps [threads=2] [warmup=3]
// onnxruntime-node is a test tool installed outside the repo (npm install --ignore-scripts onnxruntime-node@1.30.0).
const path = require('path');
const ort = require(path.join(process.env.ORT_DIR || '/tmp/ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, batchS, repsS, threadsS, warmupS] = process.argv.slice(2);
  const batch = parseInt(batchS), reps = parseInt(repsS || '10'), threads = parseInt(threadsS || '2');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  const warmup = parseInt(warmupS || '3');
  for (let w = 0; w < warmup; w++) await session.run(feeds);
  const ms = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const med = ms[Math.floor(ms.length / 2)];
  console.log(`onnxruntime ${path.basename(model)} batch ${batch} threads ${threads}: median ${med.toFixed(1)} ms, ` +
    `best ${ms[0].toFixed(1)} ms (n=${reps}), ${(batch * 1000 / med).toFixed(1)} images/s`);
}
main().catch(e => { console.error(e); process.exit(1); });
