// The sizes of each bench mode: how many runs, monitors, sockets and seconds each figure takes.

export type Mode = 'smoke' | 'quick' | 'full';

export interface Sizes {
  /** F1 concurrency levels; the last one is the headline figure. */
  f1Levels: number[];
  /** Runs per level at most (each side), and seconds per level at most (each side). */
  f1Runs: (c: number) => number;
  /** F2: runs of each shape (1 step and f2Steps steps, ours and bare) at concurrency 1. */
  f2Runs: number;
  f2Steps: number;
  f1MaxS: number;
  warmupRuns: number;
  /** F3 pause/resume cycles. */
  f3Reps: number;
  /** F4 monitor counts; the last one is the headline figure. */
  f4Monitors: number[];
  /** F4 bursts per side and level (the median is the figure). */
  f4Bursts: number;
  f4Steps: number;
  /** F5 seconds per side (plus a short warm-up). */
  f5Seconds: number;
  /** Seconds per side before measuring. */
  f5Warmup: number;
  f5Connections: number;
  /**
   * F5 users, each with a token and a finished run: the requests go to each in turn. 100 in the
   * full run; fewer in the quick one, whose 2 minutes cannot hold 100 logins (argon2) and runs.
   */
  f5Users: number;
  /** F6 idle device sockets and parked runs. */
  f6Sockets: number;
  f6Runs: number;
  /** F7 runs, one at a time, each with its webhook and its Web Push. */
  f7Runs: number;
  /** F8 runs of each side, one at a time. */
  f8Runs: number;
  /** Seconds of a profiled repeat of a figure that missed its target. */
  profileS: number;
  /** Hard limit of the whole run. */
  limitS: number;
}

export const SIZES: Record<Mode, Sizes> = {
  smoke: {
    f1Levels: [1], f1Runs: () => 3, f1MaxS: 10, f2Runs: 2, f2Steps: 3, warmupRuns: 1, f3Reps: 3, f4Monitors: [5], f4Bursts: 1, f4Steps: 3,
    f5Seconds: 1, f5Warmup: 0, f5Connections: 5, f5Users: 5, f6Sockets: 10, f6Runs: 3, f7Runs: 2, f8Runs: 3, profileS: 0, limitS: 170,
  },
  quick: {
    f1Levels: [1, 10, 50], f1Runs: (c) => (c === 1 ? 6 : c * 3), f1MaxS: 2.5, f2Runs: 5, f2Steps: 8, warmupRuns: 1, f3Reps: 50,
    f4Monitors: [10, 100, 200], f4Bursts: 3, f4Steps: 10, f5Seconds: 5, f5Warmup: 1, f5Connections: 20, f5Users: 25,
    f6Sockets: 200, f6Runs: 8, f7Runs: 10, f8Runs: 15, profileS: 2, limitS: 115,
  },
  full: {
    f1Levels: [1, 10, 50, 200], f1Runs: (c) => (c === 1 ? 30 : c * 8), f1MaxS: 25, f2Runs: 15, f2Steps: 10, warmupRuns: 5, f3Reps: 200,
    f4Monitors: [10, 100, 1000], f4Bursts: 5, f4Steps: 10, f5Seconds: 10, f5Warmup: 2, f5Connections: 20, f5Users: 100,
    f6Sockets: 500, f6Runs: 200, f7Runs: 40, f8Runs: 50, profileS: 4, limitS: 590,
  },
};
