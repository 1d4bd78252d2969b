// The bound on a worker's metrics answer (src/workers/answer-shapes.ts) leaves room for what the
// label caps let a registry hold in a busy mesh: 22 callers, each using 100 routes with three
// methods and answering four status classes, make 420,000 samples (a histogram of 16 samples per
// endpoint and class). At 200,000 both workers' answers were refused at every scrape and the page
// lost their counts. Past the bound an answer is still refused.

import t from 'tap';
import { answerRefusal, MAX_METRIC_SAMPLES } from '../../src/workers/answer-shapes.js';

/** A registry's JSON with `samples` histogram samples, labelled as a busy inbound labels them. */
function metricsAnswer(samples: number): unknown {
  const values = [];
  for (let i = 0; i < samples; i++) values.push({ labels: { direction: 'inbound', peer: `caller-${i % 22}`, method: 'GET', route: `/r${i % 100}`, le: '0.005' }, value: 1, metricName: 'meshcar_request_duration_seconds_bucket' });
  return [{ name: 'meshcar_request_duration_seconds', help: 'Request latency.', type: 'histogram', aggregator: 'sum', values }];
}

t.test('a busy registry within the label caps is taken, one past the bound refused', async (t) => {
  t.equal(answerRefusal('metrics', metricsAnswer(22 * 100 * 3 * 4 * 16)), undefined, '422,400 samples: taken');
  t.equal(answerRefusal('metrics', metricsAnswer(MAX_METRIC_SAMPLES + 1)), `more than ${MAX_METRIC_SAMPLES} samples`, 'past the bound: refused');
});
