// Pure helpers shared by the extension and its protocol test (no 'vscode' import here).

/** Settings that decide how the server process is started: changing one restarts it. */
export const RESTART_SETTINGS = ['serverCommand', 'python'] as const;

export interface LaunchSettings {
  serverCommand?: string[] | null;
  python?: string | null;
}

export interface Launch {
  command: string;
  args: string[];
}

/**
 * How to start the server: `speedsmith.serverCommand` if set, else
 * `<speedsmith.python> -m speedsmith serve` (python3, or python on Windows, when unset).
 */
export function serverCommand(settings: LaunchSettings, platform: string = process.platform): Launch {
  const custom = settings.serverCommand;
  if (Array.isArray(custom) && custom.length > 0 && custom[0]) {
    return { command: custom[0], args: custom.slice(1) };
  }
  const python = settings.python || (platform === 'win32' ? 'python' : 'python3');
  return { command: python, args: ['-m', 'speedsmith', 'serve'] };
}

export interface ModelSettings {
  backend?: string | null;
  modelPath?: string | null;
  replayFile?: string | null;
  nGpuLayers?: number | null;
}

/** A short name for the model, as the status bar shows it. */
export function modelLabel(settings: ModelSettings): string {
  const base = (file: string) => file.split(/[\\/]/).pop() || file;
  if (settings.backend === 'replay') {
    return `replay:${settings.replayFile ? base(settings.replayFile) : '-'}`;
  }
  const name = settings.modelPath ? base(settings.modelPath) : 'SmolLM2-135M (embedded)';
  const gpu = settings.nGpuLayers ? `, GPU layers ${settings.nGpuLayers}` : '';
  return name + gpu;
}

/** The server's `speedsmith/status` notification: the background queue. */
export interface BackgroundStatus {
  running: string | null;
  queued: number;
  runs: number;
}

/** The status bar's text for the model and the background queue. */
export function statusText(model: string, onSave: boolean, background?: BackgroundStatus): string {
  let state: string;
  if (!onSave) {
    state = 'on save: off';
  } else if (background?.running) {
    const more = background.queued ? ` (+${background.queued} queued)` : '';
    state = `optimizing ${background.running}${more}`;
  } else if (background?.queued) {
    state = `${background.queued} queued`;
  } else {
    state = 'on save: idle';
  }
  return `$(zap) ${model} · ${state}`;
}
