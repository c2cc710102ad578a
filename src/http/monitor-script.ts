// The monitor page's copy of the protocol codec: src/protocol/browser.ts bundled by esbuild (zod
// included) into one classic script that defines the global `JarvisProtocol`. Built from source
// when first asked for, so the page can never run an older codec than the server's, and
// nothing has to be built or committed before `npm start` or `npm test`.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const MONITOR_SCRIPT_PATH = '/monitor/protocol.js';
/** The global the bundle defines; the page's own script reads the codec from it. */
export const MONITOR_SCRIPT_GLOBAL = 'JarvisProtocol';

const ENTRY = fileURLToPath(new URL('../protocol/browser.ts', import.meta.url));

let bundle: Promise<string> | undefined;

/** The bundle's text, built once per process. A failed build is retried on the next call. */
export function monitorScript(): Promise<string> {
  bundle ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: MONITOR_SCRIPT_GLOBAL,
    platform: 'browser',
    // What the page's own script already needs (Chromium, Firefox and Safari of recent years).
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  }).then((out) => out.outputFiles[0].text).catch((err: unknown) => {
    bundle = undefined;
    throw err;
  });
  return bundle;
}
