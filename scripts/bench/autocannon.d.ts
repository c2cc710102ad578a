// The part of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  interface Options {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    amount?: number;
    method?: string;
    headers?: Record<string, string>;
    /** Seconds before a request counts as timed out. */
    timeout?: number;
    pipelining?: number;
    /** Requests per second over all connections (a fixed rate instead of as fast as it goes). */
    overallRate?: number;
    /** A sequence each connection goes through, again and again. */
    requests?: {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      /** Changes the request before it is sent (called for every request). */
      setupRequest?: (req: RawRequest, context: Record<string, unknown>) => RawRequest;
    }[];
  }
  interface RawRequest {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string | Buffer;
  }
  interface Stats {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p90: number;
    p97_5: number;
    p99: number;
  }
  interface Result {
    requests: Stats;
    latency: Stats;
    throughput: Stats;
    errors: number;
    timeouts: number;
    non2xx: number;
    /** Seconds. */
    duration: number;
    '2xx': number;
  }
  function autocannon(opts: Options): Promise<Result>;
  export default autocannon;
}
