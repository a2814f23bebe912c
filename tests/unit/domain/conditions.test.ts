import assert from 'node:assert/strict';
import fc from 'fast-check';
import { getCondition, isoTime, setCondition, type Condition } from '../../../controller/src/domain/conditions.js';

describe('domain/conditions', () => {
  it('isoTime matches Date.prototype.toISOString', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), (ms) => {
        assert.equal(isoTime(ms), new Date(ms).toISOString());
      }),
      { numRuns: 2000 },
    );
    assert.equal(isoTime(0), '1970-01-01T00:00:00.000Z');
    assert.equal(isoTime(Date.UTC(2024, 1, 29, 23, 59, 59, 999)), '2024-02-29T23:59:59.999Z');
  });

  it('lastTransitionTime changes only when the status flips; reason, message and generation follow the update', () => {
    let c: Condition[] = [];
    c = setCondition(c, { type: 'Running', status: 'True', reason: 'RanksStarted', message: 'a' }, 1000, 1);
    c = setCondition(c, { type: 'Running', status: 'True', reason: 'StillRunning', message: 'b' }, 5000, 2);
    assert.deepEqual(getCondition(c, 'Running'), { type: 'Running', status: 'True', reason: 'StillRunning', message: 'b', lastTransitionTime: isoTime(1000), observedGeneration: 2 });
    c = setCondition(c, { type: 'Running', status: 'False', reason: 'Suspended', message: 'c' }, 9000, 2);
    assert.equal(getCondition(c, 'Running')?.lastTransitionTime, isoTime(9000));
  });

  it('one condition per type, in a fixed order; onlyIfPresent does not create', () => {
    let c: Condition[] = [];
    c = setCondition(c, { type: 'Failed', status: 'True', reason: 'Cancelled', message: '' }, 0, 1);
    c = setCondition(c, { type: 'Planned', status: 'True', reason: 'PlanReady', message: '' }, 0, 1);
    c = setCondition(c, { type: 'Running', status: 'False', reason: 'Cancelled', message: '', onlyIfPresent: true }, 0, 1);
    c = setCondition(c, { type: 'Planned', status: 'True', reason: 'PlanReady', message: 'again' }, 0, 1);
    assert.deepEqual(c.map((x) => x.type), ['Planned', 'Failed']);
  });

  it('rejects a reason that is not CamelCase', () => {
    assert.throws(() => setCondition([], { type: 'Running', status: 'True', reason: 'not camel', message: '' }, 0, 1), /CamelCase/);
  });
});
