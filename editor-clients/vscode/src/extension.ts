/**
 * The metagpt-lsp extension: starts the `metagpt-lsp` language server for the languages it knows and adds what LSP
 * alone does not give a VS Code user — palette commands, a status bar item with the agents' activity, an output
 * channel, and clear messages when the server cannot start.
 *
 * `activate` returns a small API ({@link MetagptApi}) for other extensions and for the extension-host tests.
 */

import * as vscode from "vscode";
import { LanguageClient, State } from "vscode-languageclient/node";

import { ActivityStatus } from "./activityStatus";
import { createClient } from "./languageClient";
import { ClientSource, registerPaletteCommands } from "./paletteCommands";
import { findServer, ServerNotFound } from "./serverCommand";

export interface MetagptApi {
  /** Resolves once the server has answered `initialize` (rejects if it could not start). */
  ready(): Promise<void>;
  /** The status bar item's text now, and each time it changes. */
  readonly statusText: string;
  readonly onDidChangeStatus: vscode.Event<string>;
}

/** One server process at a time: started on activation, restarted on demand or when `server.*` settings change. */
class ServerSession implements ClientSource, vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private stateListener: vscode.Disposable | undefined;
  /** Why the last start failed, for messages. */
  problem: string | undefined;

  constructor(readonly output: vscode.LogOutputChannel, private readonly activity: ActivityStatus) {}

  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.launch();
    return this.starting;
  }

  async running(): Promise<LanguageClient | undefined> {
    const client = await this.start();
    if (client === undefined || !client.isRunning()) {
      void this.offerHelp("metagpt-lsp is not running.");
      return undefined;
    }
    return client;
  }

  async restart(): Promise<LanguageClient | undefined> {
    await this.stop();
    return this.start();
  }

  private async launch(): Promise<LanguageClient | undefined> {
    this.activity.setStarting();
    const resource = vscode.window.activeTextEditor?.document.uri;
    let client: LanguageClient;
    try {
      const server = await findServer(resource);
      this.output.appendLine(`starting ${server.command} ${[...server.args, "--stdio"].join(" ")} (from ${server.origin})`);
      client = createClient(server, this.output, this.activity);
    } catch (error) {
      return this.failed(error instanceof ServerNotFound ? error.message : `cannot start metagpt-lsp: ${error}`);
    }
    this.client = client;
    this.stateListener = client.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        this.activity.setProblem("the server stopped");
      } else if (event.newState === State.Running) {
        this.activity.setRunning();
      }
    });
    try {
      await client.start();
    } catch (error) {
      return this.failed(`metagpt-lsp failed to start: ${error instanceof Error ? error.message : error}`);
    }
    this.problem = undefined;
    this.activity.setRunning();
    return client;
  }

  private failed(message: string): undefined {
    this.problem = message;
    this.output.appendLine(message);
    this.activity.setProblem(message);
    void this.offerHelp(message);
    return undefined;
  }

  private async offerHelp(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output", "Restart");
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "metagptLsp.server");
    } else if (choice === "Show Output") {
      this.output.show(true);
    } else if (choice === "Restart") {
      await this.restart();
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.starting = undefined;
    this.stateListener?.dispose();
    this.stateListener = undefined;
    if (client !== undefined && client.needsStop()) {
      await client.stop().catch((error) => this.output.appendLine(`stopping the server: ${error}`));
    }
  }

  dispose(): void {
    void this.stop();
  }
}

let session: ServerSession | undefined;

export function activate(context: vscode.ExtensionContext): MetagptApi {
  const output = vscode.window.createOutputChannel("metagpt-lsp", { log: true });
  const activity = new ActivityStatus("metagptLsp.showStatus");
  session = new ServerSession(output, activity);
  const current = session;
  context.subscriptions.push(
    output,
    activity,
    current,
    ...registerPaletteCommands(current),
    vscode.commands.registerCommand("metagptLsp.restartServer", () => current.restart()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("metagptLsp.server")) {
        output.appendLine("metagptLsp.server changed: restarting the server");
        void current.restart();
      }
    }),
  );
  void current.start();
  return {
    ready: async () => {
      if ((await current.start()) === undefined) {
        throw new Error(current.problem ?? "metagpt-lsp is not running (see the metagpt-lsp output channel)");
      }
    },
    get statusText() {
      return activity.text;
    },
    onDidChangeStatus: activity.onDidChange,
  };
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}
