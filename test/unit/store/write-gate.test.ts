import { WriteGate } from '../../../src/store/write-gate';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A unit of work that runs until released, recording when it starts and ends. */
function held(log: string[], name: string) {
  let release = (): void => undefined;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    release,
    work: async () => {
      log.push(`${name} start`);
      await done;
      log.push(`${name} end`);
    },
  };
}

describe('WriteGate', () => {
  it('lets shared holders run together, and starts an exclusive holder only after they finish', async () => {
    const gate = new WriteGate();
    const log: string[] = [];
    const a = held(log, 'a');
    const b = held(log, 'b');
    const x = held(log, 'x');
    const running = [gate.shared('T', a.work), gate.shared('T', b.work)];
    await tick();
    const exclusive = gate.exclusive('T', x.work);
    await tick();
    expect(log).toEqual(['a start', 'b start']);
    a.release();
    await tick();
    expect(log).not.toContain('x start');
    b.release();
    await Promise.all(running);
    await tick();
    expect(log).toEqual(['a start', 'b start', 'a end', 'b end', 'x start']);
    x.release();
    await exclusive;
  });

  it('holds new shared holders back while an exclusive one runs; other types are not held', async () => {
    const gate = new WriteGate();
    const log: string[] = [];
    const x = held(log, 'x');
    const exclusive = gate.exclusive('T', x.work);
    await tick();
    const sameType = gate.shared('T', async () => void log.push('same type'));
    const otherType = gate.shared('U', async () => void log.push('other type'));
    await otherType;
    await tick();
    expect(log).toEqual(['x start', 'other type']);
    x.release();
    await Promise.all([exclusive, sameType]);
    expect(log).toEqual(['x start', 'other type', 'x end', 'same type']);
  });

  it('runs exclusive holders one after the other and releases the gate when work throws', async () => {
    const gate = new WriteGate();
    const log: string[] = [];
    const first = gate.exclusive('T', async () => {
      log.push('first');
      throw new Error('boom');
    });
    const second = gate.exclusive('T', async () => void log.push('second'));
    await expect(first).rejects.toThrow('boom');
    await second;
    await gate.shared('T', async () => void log.push('shared'));
    expect(log).toEqual(['first', 'second', 'shared']);
  });
});
