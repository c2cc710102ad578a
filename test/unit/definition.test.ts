import { describe, expect, it } from '@jest/globals';
import { beginsWithDeviceStep, type Definition } from '../../workflows/definition.ts';

const def = (first: string): Definition => ({
  nodes: [
    { id: 'start', type: 'start' },
    { id: 'a', type: first, params: first === 'wait' ? { durationMs: 1000 } : {} },
    { id: 'b', type: 'demo.echo' },
    { id: 'end', type: 'end' },
  ],
  edges: [{ from: 'start', to: 'a' }, { from: 'a', to: 'b' }, { from: 'b', to: 'end' }],
} as Definition);

describe('beginsWithDeviceStep (a run indexed `running` from its start)', () => {
  it('is true when the node after start is a device step', () => {
    expect(beginsWithDeviceStep(def('demo.echo'))).toBe(true);
  });
  it('is false when a control node comes first (a wait or an approval keeps the run pending)', () => {
    expect(beginsWithDeviceStep(def('wait'))).toBe(false);
    expect(beginsWithDeviceStep(def('approval'))).toBe(false);
  });
  it('looks at the resumed node for a retry from a failed step', () => {
    expect(beginsWithDeviceStep(def('wait'), 'b')).toBe(true);
    expect(beginsWithDeviceStep(def('demo.echo'), 'a')).toBe(true);
    expect(beginsWithDeviceStep(def('wait'), 'a')).toBe(false);
    expect(beginsWithDeviceStep(def('wait'), 'missing')).toBe(false);
  });
  it('is false for a definition without a start node', () => {
    expect(beginsWithDeviceStep({ nodes: [{ id: 'x', type: 'demo.echo' }], edges: [] } as unknown as Definition)).toBe(false);
  });
});
