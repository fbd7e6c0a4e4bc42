// workers.js - Node.js with worker threads for `umn trace --verify` (run once, outside CI; docs/process.md
// has the command and the result): each worker allocates and drops
// large buffers and arrays, and forces collections (--expose-gc), so V8 and its allocator unmap.
const { Worker, isMainThread } = require('worker_threads');
if (isMainThread) {
  const workers = [];
  for (let i = 0; i < 4; ++i) workers.push(new Worker(__filename));
  let left = workers.length;
  for (const w of workers) w.on('exit', () => { if (--left === 0) console.log('done'); });
} else {
  for (let round = 0; round < 30; ++round) {
    let keep = [];
    for (let i = 0; i < 16; ++i) keep.push(Buffer.alloc(1 << 20), new Array(1 << 16).fill(round));
    keep = null;
    if (global.gc) global.gc();
  }
}
