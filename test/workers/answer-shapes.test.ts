// The bound on a worker's metrics answer (src/workers/answer-shapes.ts): a registry within it is
// taken, one past it refused (the primary aggregates on its event loop: 450,000 samples a worker
// cost 7 s and 2.1 GB a page). The refusal is logged (malformed-messages.test.ts).

import t from 'tap';
import { answerRefusal, MAX_METRIC_SAMPLES } from '../../src/workers/answer-shapes.js';

/** A registry's JSON with `samples` samples of short labels (the text bound is another one). */
function metricsAnswer(samples: number): unknown {
  const values = [];
  for (let i = 0; i < samples; i++) values.push({ labels: { n: String(i) }, value: 1 });
  return [{ name: 'meshcar_requests_total', help: 'Requests.', type: 'counter', aggregator: 'sum', values }];
}

t.test('a registry within the bound is taken, one past it refused', async (t) => {
  t.equal(answerRefusal('metrics', metricsAnswer(MAX_METRIC_SAMPLES)), undefined, `${MAX_METRIC_SAMPLES} samples: taken`);
  t.equal(answerRefusal('metrics', metricsAnswer(MAX_METRIC_SAMPLES + 1)), `more than ${MAX_METRIC_SAMPLES} samples`, 'past the bound: refused');
});
