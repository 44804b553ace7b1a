import { SpscRing } from './src/index.js';

const ring = SpscRing.create({ recordSize: 40, capacity: 1024 });
function run(records: number) {
  const { words } = ring;
  let sum = 0;
  const visit = (w: Int32Array, i: number) => {
    sum = (sum + (w[i + 1] as number)) | 0;
  };
  for (let seq = 0; seq < records; ) {
    for (let b = 0; b < 256; b++, seq++) {
      const w = ring.claim();
      words[w] = 1;
      words[w + 1] = seq;
      for (let i = 2; i < 10; i++) words[w + i] = seq + i;
    }
    ring.commit();
    ring.drain(visit);
  }
  return sum;
}
function ref(records: number) {
  let queue: Int32Array[] = [];
  let head = 0;
  let sum = 0;
  for (let seq = 0; seq < records; ) {
    for (let b = 0; b < 256; b++, seq++) {
      const r = new Int32Array(10);
      r[0] = 1;
      r[1] = seq;
      for (let i = 2; i < 10; i++) r[i] = seq + i;
      queue.push(r);
    }
    while (head < queue.length) sum = (sum + (queue[head++] as Int32Array)[1]!) | 0;
    queue = [];
    head = 0;
  }
  return sum;
}
for (let r = 0; r < 6; r++) {
  let t = performance.now();
  run(4e6);
  const a = 4e6 / (performance.now() - t) / 1e3;
  t = performance.now();
  ref(4e6);
  const b = 4e6 / (performance.now() - t) / 1e3;
  console.log(a.toFixed(2), b.toFixed(2), 'M/s');
}
