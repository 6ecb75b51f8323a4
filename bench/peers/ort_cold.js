// ONNX Runtime CPU peer for cold start: load the model, run one batch-1 forward, print the top class. Timed from the
// shell around the whole process (bench/peers/cold_start.sh). usage: ORT_DIR=/tmp/ort node ort_cold.js model.onnx [threads=2]
const path = require('path');
const ort = require(path.join(process.env.ORT_DIR || '/tmp/ort', 'node_modules', 'onnxruntime-node'));
async function main() {
  const [model, threadsS] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: parseInt(threadsS || '2'), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(3 * 224 * 224).fill(0.1);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, 224, 224]) });
  const logits = out[session.outputNames[0]].data;
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  console.log(`onnxruntime ${path.basename(model)}: top class ${best}`);
}
main().catch(e => { console.error(e); process.exit(1); });
