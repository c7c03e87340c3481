import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root } from './helpers';

const require = createRequire(import.meta.url);
const config = JSON.parse(readFileSync(join(root, 'build', 'electron-builder.json'), 'utf8'));

/**
 * The installers cannot be built here (no Electron binary can be downloaded), so the
 * electron-builder configuration is checked with electron-builder's own validation, and its
 * references against the tree.
 */
describe('installable app configuration (build/electron-builder.json)', () => {
  it("passes electron-builder's own schema validation", async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration: (c: unknown, logger: unknown) => Promise<void>;
    };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    const { $schema: _s, ...c } = config;
    void _s;
    await expect(validateConfiguration(c, new DebugLogger(false))).resolves.toBeUndefined();
    // and it can fail: a misspelt option is refused
    await expect(validateConfiguration({ ...c, linux: { ...c.linux, tagret: ['AppImage'] } }, new DebugLogger(false))).rejects.toThrow(/Invalid configuration object/);
  });

  it('targets Linux (AppImage, deb), Windows and macOS, with icons, and makes no network publication', () => {
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.win.target).toContain('nsis');
    expect(config.mac.target).toContain('dmg');
    expect(config.publish).toBeNull();
    const icon = readFileSync(join(root, config.icon));
    expect(icon.subarray(1, 4).toString()).toBe('PNG');
    expect(icon.readUInt32BE(16)).toBeGreaterThanOrEqual(512); // width, as electron-builder needs for .icns/.ico
    expect(existsSync(join(root, config.mac.entitlements))).toBe(true);
  });

  it('flips the Electron fuses a careful reviewer expects (no run-as-node, NODE_OPTIONS or inspector; asar integrity, app only from the asar)', () => {
    // The trainer runs in Electron's utilityProcess, which needs none of the switched-off fuses.
    // grantFileProtocolExtraPrivileges stays at Electron's default: the window loads its page with loadFile.
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      enableCookieEncryption: true,
      loadBrowserProcessSpecificV8Snapshot: false,
    });
    expect(config.asar).toBe(true);
  });

  it('rebuilds native modules for Electron and keeps them and the wasm codecs outside the asar', () => {
    expect(config.npmRebuild).toBe(true);
    expect(config.asarUnpack).toEqual(expect.arrayContaining(['**/*.node', '**/*.wasm']));
    expect(config.files).toContain('out/**/*');
    expect(config.extraMetadata.main).toBe('out/main/index.js');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    // better-sqlite3 must be a runtime dependency so that it is packaged and rebuilt.
    expect(pkg.dependencies['better-sqlite3']).toBeDefined();
    expect(pkg.scripts.dist).toMatch(/electron-builder --config build\/electron-builder\.json/);
  });
});
