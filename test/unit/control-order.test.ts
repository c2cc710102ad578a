// Pause and resume frames of one step leave in the run's order even when their activities race.
import { describe, expect, it } from '@jest/globals';
import { DeviceConnections } from '../../src/ws/device-connections.ts';

describe('control frames in order', () => {
  it('drops a frame older than one already sent for the step', () => {
    const s = new DeviceConnections();
    expect(s.controlInOrder('k1', 6)).toBe(true); // the resume won the race
    expect(s.controlInOrder('k1', 5)).toBe(false); // the pause it followed: dropped
    expect(s.controlInOrder('k1', 7)).toBe(true);
    expect(s.controlInOrder('k1', 7)).toBe(true); // a retried activity: sent again
  });

  it('keeps steps apart', () => {
    const s = new DeviceConnections();
    expect(s.controlInOrder('a', 9)).toBe(true);
    expect(s.controlInOrder('b', 3)).toBe(true);
  });
});
