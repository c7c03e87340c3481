/**
 * Electron main: window lifecycle and thin IPC handlers over the core services. Sandbox and
 * context isolation on, Node off in the renderer, no navigation, no new windows, no network
 * requests (the app makes none), every IPC argument validated against the contract.
 */
import { app, BrowserWindow, dialog, ipcMain, session, utilityProcess, type WebFrameMain } from 'electron';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispatch, type EventName, type Events } from '../shared/contract';
import { IPC_EVENT, IPC_INVOKE } from '../shared/ipc-names';
import { createServices, type Services } from '../core/node/services';
import { defaultDataDir } from '../core/node/paths';
import type { TrainerChild } from '../core/node/runs';
import type { TrainerEvent } from '../shared/trainer-protocol';

const here = dirname(fileURLToPath(import.meta.url));
const devUrl = process.env.ELECTRON_RENDERER_URL;
const rendererFile = join(here, '../renderer/index.html');

app.enableSandbox();

/** A better-sqlite3 binding built for Electron's ABI, shipped with the packaged app. */
function electronSqliteBinding(): string | undefined {
  const candidates = [
    process.env.CTSSL_SQLITE_BINDING,
    join(process.resourcesPath ?? '', 'native', 'better_sqlite3.node'),
    join(here, '../../build/native/better_sqlite3.node'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

function isTrustedFrame(frame: WebFrameMain | null): boolean {
  if (!frame) return false;
  const url = frame.url;
  if (devUrl && url.startsWith(devUrl)) return true;
  return url.startsWith('file://') && decodeURIComponent(new URL(url).pathname).endsWith('/renderer/index.html');
}

/** The trainer in an Electron utility process (out/main/trainer.js), killed when the app quits. */
const trainers = new Set<Electron.UtilityProcess>();
function spawnUtilityTrainer(): TrainerChild {
  const child = utilityProcess.fork(join(here, 'trainer.js'), [], {
    serviceName: 'CT SSL Studio trainer',
    stdio: 'inherit',
    env: { ...process.env, ...(electronSqliteBinding() ? { CTSSL_SQLITE_BINDING: electronSqliteBinding() } : {}) },
  });
  trainers.add(child);
  child.on('exit', () => trainers.delete(child));
  return {
    get pid() {
      return child.pid;
    },
    send: (m) => child.postMessage(m),
    onEvent: (cb) => child.on('message', (m) => cb(m as TrainerEvent)),
    onExit: (cb) => child.on('exit', (code) => cb(code, null)),
    kill: () => void child.kill(),
  };
}

let services: Services | null = null;
let mainWindow: BrowserWindow | null = null;

function emit<E extends EventName>(event: E, payload: Events[E]) {
  for (const w of BrowserWindow.getAllWindows()) w.webContents.send(IPC_EVENT, event, payload);
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1440,
    height: 920,
    minWidth: 960,
    minHeight: 640,
    title: 'CT SSL Studio',
    backgroundColor: '#111418',
    show: false,
    webPreferences: {
      preload: join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (e) => e.preventDefault());
  if (devUrl) void win.loadURL(devUrl);
  else void win.loadFile(rendererFile);
  return win;
}

app.whenReady().then(() => {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  ses.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*'] }, (d, cb) =>
    cb({ cancel: !(devUrl && d.url.startsWith(new URL(devUrl).origin)) }),
  );

  const dataDir = defaultDataDir();
  services = createServices({
    mode: 'electron',
    dataDir,
    dbPath: process.env.CTSSL_DB ?? join(dataDir, 'library.sqlite'),
    nativeBinding: electronSqliteBinding(),
    spawnTrainer: spawnUtilityTrainer,
    emit,
    pickFolder: async () => {
      const res = await dialog.showOpenDialog(mainWindow ?? BrowserWindow.getFocusedWindow()!, {
        title: 'Add a folder of DICOM studies',
        properties: ['openDirectory'],
      });
      return res.canceled || res.filePaths.length === 0 ? null : res.filePaths[0];
    },
    pickFiles: async () => {
      const res = await dialog.showOpenDialog(mainWindow ?? BrowserWindow.getFocusedWindow()!, {
        title: 'Import labels (LIDC XML, RSNA PE CSV, DICOM SEG, patient attributes CSV)',
        properties: ['openFile', 'multiSelections'],
        filters: [{ name: 'Labels', extensions: ['xml', 'csv', 'dcm', '*'] }],
      });
      return res.canceled ? [] : res.filePaths;
    },
    pickPackage: async () => {
      const res = await dialog.showOpenDialog(mainWindow ?? BrowserWindow.getFocusedWindow()!, {
        title: 'Import a CT SSL Studio weights package',
        properties: ['openFile'],
        filters: [{ name: 'Weights package', extensions: ['zip', 'ctssl'] }],
      });
      return res.canceled || res.filePaths.length === 0 ? null : res.filePaths[0];
    },
  });
  ipcMain.handle(IPC_INVOKE, (event, channel: unknown, args: unknown) => {
    if (!isTrustedFrame(event.senderFrame)) {
      return { ok: false, error: { code: 'invalid-argument', message: 'request from an untrusted frame' } };
    }
    return dispatch(services!.handlers, channel, args);
  });
  mainWindow = createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

app.on('will-quit', (e) => {
  if (services) {
    e.preventDefault();
    const s = services;
    services = null;
    void s.close().finally(() => {
      for (const t of trainers) t.kill();
      app.quit();
    });
  }
});
