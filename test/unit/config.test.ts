// Settings: the development JWT secret (public, in the source) only where no one else connects.
import { describe, expect, it } from '@jest/globals';
import { ConfigError, isLoopback, loadConfig } from '../../src/config.ts';

const SECRET = 'x'.repeat(32);

describe('JWT_SECRET', () => {
  it('may be left out on a loopback HOST outside production (the development default)', () => {
    for (const HOST of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3']) {
      expect(loadConfig({ HOST }).JWT_SECRET.length).toBeGreaterThanOrEqual(32);
    }
  });

  it('is required on any HOST others can reach, whatever NODE_ENV says', () => {
    for (const HOST of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'jarvis.example.com', '128.0.0.1']) {
      for (const NODE_ENV of ['development', 'test']) {
        expect(() => loadConfig({ HOST, NODE_ENV })).toThrow(ConfigError);
        expect(() => loadConfig({ HOST, NODE_ENV })).toThrow(/JWT_SECRET is required when HOST/);
      }
      expect(loadConfig({ HOST, JWT_SECRET: SECRET }).JWT_SECRET).toBe(SECRET);
    }
  });

  it('is required in production, even on loopback', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/required in production/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET }).JWT_SECRET).toBe(SECRET);
  });

  it('isLoopback knows the loopback spellings and nothing else', () => {
    expect(['127.0.0.1', '127.255.0.9', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '', '127.0.0.1.example.com', 'localhost.example.com', '1127.0.0.1', '::'].some(isLoopback)).toBe(false);
  });
});

describe('CORS_ORIGINS', () => {
  it('is empty by default and reads a comma list of exact origins', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: ' tauri://localhost, https://app.example.com,http://127.0.0.1:5173,' }).CORS_ORIGINS)
      .toEqual(['tauri://localhost', 'https://app.example.com', 'http://127.0.0.1:5173']);
  });

  it('refuses what a browser never sends as an origin, naming it', () => {
    for (const bad of ['*', 'https://app.example.com/', 'https://app.example.com/path', 'app.example.com', 'https://*.example.com', 'HTTPS://APP.EXAMPLE.COM']) {
      expect(() => loadConfig({ CORS_ORIGINS: `tauri://localhost,${bad}` })).toThrow(new RegExp(`CORS_ORIGINS: "${bad.replace(/[.*/]/g, '\\$&')}" is not an origin`));
    }
  });
});
