// speedsmith for VS Code: starts `speedsmith serve` and adds commands and a status bar item.
//
// Everything the server offers arrives through vscode-languageclient: the "Optimize <name>"
// refactoring (code action), progress notifications with a Cancel button ($/progress), the
// edit (workspace/applyEdit), the "faster version available" hints with their quick fixes,
// and hovers. Settings are read by the server through workspace/configuration (section
// `speedsmith`) and re-read on every change; only the settings that decide how the server
// is started (RESTART_SETTINGS) restart it.

import * as vscode from 'vscode';
import {
  CodeAction,
  CodeActionKind,
  CodeActionRequest,
  Command,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { BackgroundStatus, RESTART_SETTINGS, modelLabel, serverCommand, statusText } from './common';

const OPTIMIZE = 'speedsmith.optimize';

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let background: BackgroundStatus | undefined;
let lastReport: unknown;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('speedsmith', { log: true });
  statusItem = vscode.window.createStatusBarItem('speedsmith.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'speedsmith';
  statusItem.command = 'speedsmith.showLog';
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('speedsmith.optimizeAtCursor', optimizeAtCursor),
    vscode.commands.registerCommand('speedsmith.cancelAll', cancelAll),
    vscode.commands.registerCommand('speedsmith.restartServer', restart),
    vscode.commands.registerCommand('speedsmith.showLog', () => output.show()),
    vscode.commands.registerCommand('speedsmith.showLastReport', showLastReport),
    vscode.workspace.onDidChangeConfiguration(onConfigurationChanged),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('speedsmith');
}

async function start(): Promise<void> {
  const config = settings();
  const launch = serverCommand({
    serverCommand: config.get<string[] | null>('serverCommand'),
    python: config.get<string | null>('python'),
  });
  output.info(`starting ${[launch.command, ...launch.args].join(' ')}`);
  const serverOptions: ServerOptions = { command: launch.command, args: launch.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file', language: 'python' }],
    synchronize: { configurationSection: 'speedsmith' },
    outputChannel: output,
    traceOutputChannel: output,
  };
  const created = new LanguageClient('speedsmith', 'speedsmith', serverOptions, clientOptions);
  client = created;
  background = undefined;
  created.onDidChangeState(() => updateStatus());
  created.onNotification('speedsmith/status', (params: BackgroundStatus) => {
    background = params;
    updateStatus();
  });
  updateStatus();
  try {
    await created.start();
  } catch (err) {
    output.error(`the server did not start: ${err}`);
    const choice = await vscode.window.showErrorMessage(
      `speedsmith: could not start \`${[launch.command, ...launch.args].join(' ')}\`. ` +
        'Set speedsmith.python (an interpreter with speedsmith installed) or speedsmith.serverCommand.',
      'Open settings',
      'Show log',
    );
    if (choice === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'speedsmith');
    } else if (choice === 'Show log') {
      output.show();
    }
  }
  updateStatus();
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    try {
      await running.stop();
    } catch (err) {
      output.warn(`stopping the server: ${err}`);
    }
  }
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

function onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
  if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(`speedsmith.${key}`))) {
    output.info('server settings changed: restarting');
    void restart();
  } else if (event.affectsConfiguration('speedsmith')) {
    updateStatus(); // the server pulls the new settings itself (workspace/didChangeConfiguration)
  }
}

function updateStatus(): void {
  const config = settings();
  const model = modelLabel({
    backend: config.get<string>('backend'),
    modelPath: config.get<string | null>('modelPath'),
    replayFile: config.get<string | null>('replayFile'),
    nGpuLayers: config.get<number>('nGpuLayers'),
  });
  const state = client?.state;
  if (state === State.Running) {
    statusItem.text = statusText(model, config.get<boolean>('onSave') ?? false, background);
  } else {
    statusItem.text = `$(zap) speedsmith: ${state === State.Starting ? 'starting' : 'stopped'}`;
  }
  statusItem.tooltip =
    `speedsmith: model ${model}; ` +
    `${background ? `${background.runs} background runs this session; ` : ''}click for the log`;
  statusItem.show();
}

// The first enabled optimize command ("Optimize selection (...)" comes before the whole
// function's action when text is selected); else why the first disabled one is not offered.
function optimizeCommand(items: (Command | CodeAction)[] | null): Command | string | undefined {
  let disabled: string | undefined;
  for (const item of items ?? []) {
    if (typeof item.command === 'string') {
      if (item.command === OPTIMIZE) {
        return item as Command;
      }
      continue;
    }
    const action = item as CodeAction;
    if (action.disabled) {
      disabled = disabled ?? action.disabled.reason;
      continue;
    }
    if (action.command?.command === OPTIMIZE) {
      return action.command;
    }
  }
  return disabled;
}

async function optimizeAtCursor(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== 'python') {
    void vscode.window.showInformationMessage('speedsmith: put the cursor in a Python function.');
    return;
  }
  if (!client || client.state !== State.Running) {
    void vscode.window.showErrorMessage('speedsmith: the server is not running (see the log).');
    return;
  }
  if (editor.document.isDirty && !(await editor.document.save())) {
    void vscode.window.showWarningMessage('speedsmith: save the file first.');
    return;
  }
  const c2p = client.code2ProtocolConverter;
  const actions = await client.sendRequest(CodeActionRequest.type, {
    textDocument: c2p.asTextDocumentIdentifier(editor.document),
    range: c2p.asRange(editor.selection),
    context: { diagnostics: [], only: [CodeActionKind.RefactorRewrite] },
  });
  const command = optimizeCommand(actions);
  if (command === undefined) {
    void vscode.window.showInformationMessage('speedsmith: the cursor is not in a function.');
    return;
  }
  if (typeof command === 'string') {
    void vscode.window.showWarningMessage(command);
    return;
  }
  // Progress (with Cancel), the edit and the outcome's message come from the server.
  lastReport = await client.sendRequest(ExecuteCommandRequest.type, {
    command: command.command,
    arguments: command.arguments,
  });
}

async function cancelAll(): Promise<void> {
  if (client?.state === State.Running) {
    const count = await client.sendRequest(ExecuteCommandRequest.type, {
      command: 'speedsmith.cancel',
      arguments: [],
    });
    output.info(`cancelled ${count} job(s)`);
  }
}

async function showLastReport(): Promise<void> {
  if (lastReport === undefined || lastReport === null) {
    void vscode.window.showInformationMessage('speedsmith: no report yet in this session.');
    return;
  }
  const document = await vscode.workspace.openTextDocument({
    content: JSON.stringify(lastReport, null, 2),
    language: 'json',
  });
  await vscode.window.showTextDocument(document, { preview: true });
}
