// A protocol-level client test: the real server over stdio, driven by vscode-languageclient's
// own protocol library (vscode-languageserver-protocol), started the way the extension starts
// it (common.serverCommand). Run by tests/vscode/test_vscode_protocol.py:
//
//   node out/test/protocolClient.js input.json
//
// input.json: {"python", "pythonPath", "cacheDir", "project", "replayFile", "selection"?}.
// Prints one JSON object (what the client saw) on stdout; exits 1 on a protocol failure. With
// "selection" ({"start": line, "end": line}, 0-based), it asks for the code actions of that
// selection instead, runs the first one ("Optimize selection (...)") and reports the edit the
// server asked the client to apply.

import * as cp from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import {
  ApplyWorkspaceEditParams,
  ApplyWorkspaceEditRequest,
  CodeAction,
  CodeActionKind,
  CodeActionRequest,
  Command,
  ConfigurationRequest,
  Diagnostic,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  DidSaveTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  LogMessageNotification,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocumentEdit,
  TextEdit,
  WorkDoneProgressCreateRequest,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { serverCommand } from '../common';

interface Input {
  python: string;
  pythonPath: string;
  cacheDir: string;
  project: string;
  replayFile: string;
  selection?: { start: number; end: number };
}

const SLOW_LINE = '        total = total + nums[: i + 1][-1] * nums[i]';
const EDITED_LINE = '        total += nums[: i + 1][-1] * nums[i]';

function deadline<T>(promise: Promise<T>, seconds: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), seconds * 1000);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

async function main(): Promise<void> {
  const input: Input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const launch = serverCommand({ python: input.python });
  const server = cp.spawn(launch.command, launch.args, {
    env: { ...process.env, PYTHONPATH: input.pythonPath, SPEEDSMITH_CACHE_DIR: input.cacheDir },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const connection = createProtocolConnection(
    new StreamMessageReader(server.stdout!),
    new StreamMessageWriter(server.stdin!),
  );
  const diagnostics = new Map<string, Diagnostic[]>();
  const waiters: (() => void)[] = [];
  connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
    diagnostics.set(params.uri, params.diagnostics);
    waiters.splice(0).forEach((wake) => wake());
  });
  connection.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => null));
  connection.onRequest(WorkDoneProgressCreateRequest.type, () => null);
  const applied: ApplyWorkspaceEditParams[] = [];
  connection.onRequest(ApplyWorkspaceEditRequest.type, (params) => {
    applied.push(params);
    return { applied: true };
  });
  connection.onNotification(LogMessageNotification.type, (params) => {
    process.stderr.write(`server log: ${params.message}\n`);
  });
  connection.listen();

  const root = input.project;
  const file = path.join(root, 'sumsq.py');
  const uri = pathToFileURL(file).toString();
  const init = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(root).toString(),
    workspaceFolders: [{ uri: pathToFileURL(root).toString(), name: 'project' }],
    capabilities: {
      textDocument: {
        codeAction: {
          codeActionLiteralSupport: {
            codeActionKind: { valueSet: [CodeActionKind.RefactorRewrite, CodeActionKind.QuickFix] },
          },
        },
        synchronization: { didSave: true },
      },
      workspace: { configuration: true, workspaceEdit: { documentChanges: true }, applyEdit: true },
      window: { workDoneProgress: true },
    },
    initializationOptions: {
      backend: 'replay',
      replayFile: input.replayFile,
      onSave: true,
      onSaveBudget: 2,
      seed: 1,
    },
  });
  await connection.sendNotification(InitializedNotification.type, {});

  const original = fs.readFileSync(file, 'utf8');
  await connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: 'python', version: 1, text: original },
  });
  if (input.selection) {
    // As VS Code sends an editor selection of whole lines: to the start of the next line.
    const selected = (await connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri },
      range: {
        start: { line: input.selection.start, character: 0 },
        end: { line: input.selection.end + 1, character: 0 },
      },
      context: { diagnostics: [], only: [CodeActionKind.RefactorRewrite] },
    })) as CodeAction[] | null;
    const first = selected?.[0]?.command;
    const report = first
      ? await deadline(
          connection.sendRequest(ExecuteCommandRequest.type, {
            command: first.command,
            arguments: first.arguments,
          }),
          180,
          'the selection run',
        )
      : null;
    await connection.sendRequest(ShutdownRequest.type);
    await connection.sendNotification(ExitNotification.type);
    process.stdout.write(
      JSON.stringify({
        actions: (selected ?? []).map((a) => ({ title: a.title, arguments: a.command?.arguments })),
        report,
        applied,
      }) + '\n',
    );
    await deadline(new Promise((resolve) => server.on('exit', resolve)), 20, 'server exit');
    connection.dispose();
    return;
  }
  const actions = (await connection.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: { start: { line: 3, character: 6 }, end: { line: 3, character: 6 } },
    context: { diagnostics: [] },
  })) as (CodeAction | Command)[] | null;

  // Save an edit of the function: the server optimises it in the background.
  const edited = original.replace(SLOW_LINE, EDITED_LINE);
  fs.writeFileSync(file, edited, 'utf8');
  await connection.sendNotification(DidChangeTextDocumentNotification.type, {
    textDocument: { uri, version: 2 },
    contentChanges: [{ text: edited }],
  });
  await connection.sendNotification(DidSaveTextDocumentNotification.type, { textDocument: { uri } });
  const hint = await deadline(
    new Promise<Diagnostic>((resolve) => {
      const check = () => {
        const found = diagnostics.get(uri) ?? [];
        if (found.length > 0) {
          resolve(found[0]);
        } else {
          waiters.push(check);
        }
      };
      check();
    }),
    180,
    'the background hint',
  );
  const fixes = (await connection.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: hint.range,
    context: { diagnostics: [hint], only: [CodeActionKind.QuickFix] },
  })) as CodeAction[] | null;
  const fix = fixes?.[0];
  const change = fix?.edit?.documentChanges?.[0] as TextDocumentEdit | undefined;
  const textEdit = change?.edits[0] as TextEdit | undefined;

  await connection.sendRequest(ShutdownRequest.type);
  await connection.sendNotification(ExitNotification.type);
  process.stdout.write(
    JSON.stringify({
      serverName: init.serverInfo?.name,
      codeActionKinds: (init.capabilities.codeActionProvider as { codeActionKinds?: string[] })
        ?.codeActionKinds,
      actions: (actions ?? []).map((a) => ({
        title: a.title,
        kind: (a as CodeAction).kind ?? null,
        command: typeof a.command === 'string' ? a.command : a.command?.command,
      })),
      hint: { message: hint.message, severity: hint.severity, source: hint.source, line: hint.range.start.line },
      fix: fix
        ? { title: fix.title, kind: fix.kind, version: change?.textDocument.version, newText: textEdit?.newText }
        : null,
    }) + '\n',
  );
  await deadline(new Promise((resolve) => server.on('exit', resolve)), 20, 'server exit');
  connection.dispose();
}

main().catch((err) => {
  process.stderr.write(`protocol client failed: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
});
