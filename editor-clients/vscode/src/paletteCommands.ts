/**
 * The palette commands: each maps to one of the server's `workspace/executeCommand` commands (docs/protocol.md).
 *
 * The server applies edits itself (`workspace/applyEdit`) and says what went wrong with `window/showMessage`, so the
 * commands here only gather the arguments at the cursor and show what the server returns.
 */

import * as vscode from "vscode";
import { ExecuteCommandRequest, LanguageClient } from "vscode-languageclient/node";

export interface ClientSource {
  /** The running client, or undefined (the user has been told why). */
  running(): Promise<LanguageClient | undefined>;
  output: vscode.LogOutputChannel;
}

async function execute<T>(source: ClientSource, command: string, args: unknown[] = []): Promise<T | undefined> {
  const client = await source.running();
  if (client === undefined) {
    return undefined;
  }
  try {
    return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) as T;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    void vscode.window.showErrorMessage(`metagpt-lsp: ${command} failed: ${message}`);
    return undefined;
  }
}

function activeEditor(): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showInformationMessage("metagpt-lsp: open a file first.");
  }
  return editor;
}

async function atCursor(source: ClientSource, command: string): Promise<unknown> {
  const editor = activeEditor();
  const client = editor && await source.running();
  if (editor === undefined || client === undefined) {
    return undefined;
  }
  const document = editor.document;
  return execute(source, command, [{
    uri: client.code2ProtocolConverter.asUri(document.uri),
    version: document.version,
    position: client.code2ProtocolConverter.asPosition(editor.selection.active),
  }]);
}

async function explainAndFix(source: ClientSource): Promise<unknown> {
  const editor = activeEditor();
  const client = editor && await source.running();
  if (editor === undefined || client === undefined) {
    return undefined;
  }
  const cursor = editor.selection.active;
  const here = vscode.languages.getDiagnostics(editor.document.uri).filter((d) => d.range.contains(cursor));
  if (here.length === 0) {
    void vscode.window.showInformationMessage("metagpt-lsp: no diagnostic at the cursor to explain and fix.");
    return undefined;
  }
  let chosen = here[0];
  if (here.length > 1) {
    const picked = await vscode.window.showQuickPick(
      here.map((diagnostic) => ({ label: diagnostic.message.split("\n")[0], description: diagnostic.source, diagnostic })),
      { title: "Explain and fix which problem?" });
    if (picked === undefined) {
      return undefined;
    }
    chosen = picked.diagnostic;
  }
  return execute(source, "metagpt.explainAndFix", [{
    uri: client.code2ProtocolConverter.asUri(editor.document.uri),
    version: editor.document.version,
    diagnostic: client.code2ProtocolConverter.asDiagnostic(chosen),
  }]);
}

async function showDocument(content: string, language: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument({ content, language });
  await vscode.window.showTextDocument(document, { preview: true });
}

export function registerPaletteCommands(source: ClientSource): vscode.Disposable[] {
  const register = (name: string, run: () => Promise<unknown>) => vscode.commands.registerCommand(name, run);
  return [
    register("metagptLsp.showStatus", async () => {
      const report = await execute<Record<string, unknown>>(source, "metagpt.status");
      if (report) {
        source.output.appendLine(`status: ${JSON.stringify(report, null, 2)}`);
      }
      return report;
    }),
    register("metagptLsp.showTrace", async () => {
      const trace = await execute<string>(source, "metagpt.trace");
      if (typeof trace === "string") {
        await showDocument(trace, "plaintext");
      }
      return trace;
    }),
    register("metagptLsp.showTeamGraph", async () => {
      const graph = await execute<{ text: string; mermaid: string }>(source, "metagpt.team");
      if (graph) {
        await showDocument(`# The agents' cooperation graph\n\n\`\`\`\n${graph.text}\n\`\`\`\n\n` +
          `\`\`\`mermaid\n${graph.mermaid}\n\`\`\`\n`, "markdown");
      }
      return graph;
    }),
    register("metagptLsp.clearReviewCache", () => execute<number>(source, "metagpt.clearReviewCache")),
    register("metagptLsp.explainAndFix", () => explainAndFix(source)),
    register("metagptLsp.generate", () => atCursor(source, "metagpt.generate")),
    register("metagptLsp.reviewFunction", () => atCursor(source, "metagpt.reviewFunction")),
    register("metagptLsp.reviewFile", async () => {
      const editor = activeEditor();
      const client = editor && await source.running();
      if (editor === undefined || client === undefined) {
        return undefined;
      }
      const findings = await execute<number>(source, "metagpt.reviewFile",
        [{ uri: client.code2ProtocolConverter.asUri(editor.document.uri) }]);
      if (typeof findings === "number") {
        void vscode.window.showInformationMessage(`metagpt-lsp: the review found ${findings} problem(s).`);
      }
      return findings;
    }),
    register("metagptLsp.showOutput", async () => source.output.show(true)),
  ];
}
