/**
 * Electron main: window lifecycle and thin IPC handlers over the core services. Sandbox and
 * context isolation on, Node off in the renderer, no navigation, no new windows, no network
 * requests (the app makes none), every IPC argument validated against the contract.
 */
import { app, BrowserWindow, dialog, ipcMain, session, utilityProcess, webContents, type WebFrameMain } from 'electron';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispatch, toEnvelope, userPathSchema, type EventName, type Events } from '../shared/contract';
import { IPC_EVENT, IPC_GRANT, IPC_INVOKE } from '../shared/ipc-names';
import { createServices, type FolderPurpose, type Services } from '../host/services';
import { defaultDataDir } from '../platform/paths';
import { trainerExecArgv } from '../platform/trainer-flags';
import type { TrainerChild } from '../host/runs/trainer-host';
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
    execArgv: trainerExecArgv(),
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

/** The native folder dialog's title for each purpose of library.pickFolder. */
const FOLDER_TITLES: Record<FolderPurpose, string> = {
  studies: 'Add a folder of DICOM studies',
  labels: 'Import every label file under a folder',
  'job-parent': 'Where to write the cluster job (a new folder is made inside)',
  'job-output': "Import a cluster job's output folder (or the job folder holding output/)",
};

let services: Services | null = null;
let mainWindow: BrowserWindow | null = null;

/** The window whose renderer (webContents id) asked for a dialog; the main window otherwise. */
function askingWindow(contentsId: number | null): BrowserWindow {
  const wc = contentsId === null ? undefined : webContents.fromId(contentsId);
  return (wc && BrowserWindow.fromWebContents(wc)) ?? mainWindow ?? BrowserWindow.getFocusedWindow()!;
}

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
  // The window's grants (files its dialogs returned and the user dropped on it) end with it.
  const contentsId = win.webContents.id;
  win.on('closed', () => services?.closeWindow(contentsId));
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
    // Each dialog opens over the window that asked; the services grant what it returns to that window.
    pickFolder: async (id, purpose) => {
      const res = await dialog.showOpenDialog(askingWindow(id), {
        title: FOLDER_TITLES[purpose],
        properties: purpose === 'job-parent' ? ['openDirectory', 'createDirectory'] : ['openDirectory'],
      });
      return res.canceled || res.filePaths.length === 0 ? null : res.filePaths[0];
    },
    pickFiles: async (id) => {
      const res = await dialog.showOpenDialog(askingWindow(id), {
        title: 'Import labels (LIDC XML, RSNA PE CSV, DICOM SEG, patient attributes CSV)',
        properties: ['openFile', 'multiSelections'],
        filters: [{ name: 'Labels', extensions: ['xml', 'csv', 'dcm', '*'] }],
      });
      return res.canceled ? [] : res.filePaths;
    },
    pickPackage: async (id) => {
      const res = await dialog.showOpenDialog(askingWindow(id), {
        title: 'Import a CT SSL Studio weights package or a PyTorch checkpoint',
        properties: ['openFile'],
        filters: [{ name: 'Weights package or PyTorch checkpoint', extensions: ['zip', 'ctssl', 'tar', 'pth', 'pt'] }],
      });
      return res.canceled || res.filePaths.length === 0 ? null : res.filePaths[0];
    },
  });
  // Requests: each window has its own handler table (the files it was granted).
  ipcMain.handle(IPC_INVOKE, (event, channel: unknown, args: unknown) => {
    if (!isTrustedFrame(event.senderFrame)) {
      return { ok: false, error: { code: 'invalid-argument', message: 'request from an untrusted frame' } };
    }
    return dispatch(services!.forWindow(event.sender.id), channel, args);
  });
  // A file dropped on a window, reported by the preload: checked, then granted to that window.
  ipcMain.handle(IPC_GRANT, (event, path: unknown) => {
    if (!isTrustedFrame(event.senderFrame)) {
      return { ok: false, error: { code: 'invalid-argument', message: 'request from an untrusted frame' } };
    }
    try {
      const checked = userPathSchema.safeParse(path);
      if (!checked.success) return { ok: false, error: { code: 'invalid-argument', message: `drop: path: ${checked.error.issues[0].message}` } };
      return { ok: true, value: services!.grantDropped(event.sender.id, checked.data) };
    } catch (err) {
      return { ok: false, error: toEnvelope(err) };
    }
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
