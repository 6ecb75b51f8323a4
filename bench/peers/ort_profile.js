// ONNX Runtime's own per-op profile of a batch-1 forward (the peer's side of `VitSharp.Bench vit --profile`).
// usage: ORT_DIR=/tmp/ort node ort_profile.js model.onnx [reps=20] [threads=2] [prefix=/tmp/ortprof/p]
// Runs 30 warm-up forwards and `reps` timed ones with enableProfiling, then prints the trace file's path;
// summarise it with: python3 bench/peers/ort_profile_summary.py TRACE.json reps
const path = require('path');
const ort = require(path.join(process.env.ORT_DIR || '/tmp/ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, repsS, threadsS, prefix] = process.argv.slice(2);
  const reps = parseInt(repsS || '20'), threads = parseInt(threadsS || '2');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    enableProfiling: true, profileFilePrefix: prefix || '/tmp/ortprof/p',
  });
  const data = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, 224, 224]) };
  for (let r = 0; r < 30 + reps; r++) await session.run(feeds);
  session.endProfiling();   // onnxruntime-node returns nothing: print the newest trace with the prefix
  const fs = require('fs');
  const pre = prefix || '/tmp/ortprof/p', dir = path.dirname(pre);
  const files = fs.readdirSync(dir).filter(f => f.startsWith(path.basename(pre) + '_') && f.endsWith('.json'))
    .map(f => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  console.log(files[0]);
}
main().catch(e => { console.error(e); process.exit(1); });
