// Runs an ONNX model with onnxruntime-node on a raw float32 input; writes the first output as raw float32.
// usage: node ort_run.js ORT_DIR model.onnx input.f32 d0,d1,d2,d3 output.f32
const fs = require('fs');
const path = require('path');
const [ortDir, model, input, dims, output] = process.argv.slice(2);
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
(async () => {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const shape = dims.split(',').map(Number);
  const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const out = result[session.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  console.log(session.outputNames[0], JSON.stringify(out.dims));
})().catch(e => { console.error(e.message || e); process.exit(1); });
