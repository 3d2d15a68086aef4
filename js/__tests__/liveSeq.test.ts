import { describe, expect, it } from 'vitest';

import { LiveSequence } from '../shared/liveSeq';

describe('live sequence numbers', () => {
  it('applies consecutive messages, flags a jump and drops a replay', () => {
    const seq = new LiveSequence();
    expect(seq.metrics([4, 5])).toEqual({ apply: true, gap: false }); // first on a socket
    expect(seq.metrics([6, 6])).toEqual({ apply: true, gap: false });
    expect(seq.metrics([8, 9])).toEqual({ apply: true, gap: true }); // 7 missed
    expect(seq.metrics([7, 7])).toEqual({ apply: false, gap: false }); // late replay
    expect(seq.last).toBe(9);
  });

  it('takes a gap notice as accounting up to its number, and resets per socket', () => {
    const seq = new LiveSequence();
    seq.metrics([1, 1]);
    seq.gap(3);
    expect(seq.metrics([4, 4])).toEqual({ apply: true, gap: false });
    seq.gap(undefined);
    expect(seq.last).toBe(4);
    seq.reset();
    expect(seq.metrics([9, 9])).toEqual({ apply: true, gap: false });
  });

  it('applies messages of a server without sequence numbers', () => {
    expect(new LiveSequence().metrics(undefined)).toEqual({ apply: true, gap: false });
  });
});
