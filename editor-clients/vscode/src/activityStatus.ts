/**
 * The status bar item that shows what the agents are doing.
 *
 * It follows every work-done progress the server reports (`$/progress` begin/report/end on server-created tokens) —
 * fed by the language client's `handleWorkDoneProgress` middleware, so VS Code's own progress UI keeps working —
 * and shows "$(sync~spin) metagpt: starting…" until the server has answered `initialize`, "$(sync~spin) metagpt:
 * <task>…" while any task runs, "$(hubot) metagpt" when idle, and an error state when the server is not running.
 * Clicking it shows the server's status.
 */

import * as vscode from "vscode";

export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
}

interface Task {
  title: string;
  message?: string;
  percentage?: number;
}

export class ActivityStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly tasks = new Map<string, Task>();
  private problem: string | undefined;
  private starting = true;
  private readonly changed = new vscode.EventEmitter<string>();
  /** Fires with the item's text each time it changes (tests and other parts of the extension listen). */
  readonly onDidChange = this.changed.event;

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem("metagptLsp.activity", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "metagpt-lsp";
    this.item.command = command;
    this.render();
    this.item.show();
  }

  get text(): string {
    return this.item.text;
  }

  /** One `$/progress` value for `token`. */
  progress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    if (value.kind === "begin") {
      this.tasks.set(key, { title: value.title ?? "working", message: value.message, percentage: value.percentage });
    } else if (value.kind === "report") {
      const task = this.tasks.get(key);
      if (task !== undefined) {
        task.message = value.message ?? task.message;
        task.percentage = value.percentage ?? task.percentage;
      }
    } else {
      this.tasks.delete(key);
    }
    this.render();
  }

  /** The server is being started. */
  setStarting(): void {
    this.starting = true;
    this.problem = undefined;
    this.tasks.clear();
    this.render();
  }

  /** The server runs and has answered `initialize`. */
  setRunning(): void {
    this.starting = false;
    this.problem = undefined;
    this.render();
  }

  /** The server stopped or could not start. */
  setProblem(problem: string): void {
    this.starting = false;
    this.problem = problem;
    this.tasks.clear();
    this.render();
  }

  private render(): void {
    const before = this.item.text;
    if (this.problem !== undefined) {
      this.item.text = "$(error) metagpt";
      this.item.tooltip = `metagpt-lsp: ${this.problem}`;
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
    } else if (this.starting) {
      this.item.text = "$(sync~spin) metagpt: starting…";
      this.item.tooltip = "metagpt-lsp: starting the server";
      this.item.backgroundColor = undefined;
    } else if (this.tasks.size === 0) {
      this.item.text = "$(hubot) metagpt";
      this.item.tooltip = "metagpt-lsp: idle. Click for the server's status.";
      this.item.backgroundColor = undefined;
    } else {
      const tasks = [...this.tasks.values()];
      const latest = tasks[tasks.length - 1];
      const label = tasks.length === 1 ? latest.title : `${tasks.length} tasks`;
      this.item.text = `$(sync~spin) metagpt: ${label}…`;
      this.item.tooltip = tasks
        .map((task) => `${task.title}${task.message ? `: ${task.message}` : ""}` +
          `${task.percentage !== undefined ? ` (${task.percentage}%)` : ""}`)
        .join("\n");
      this.item.backgroundColor = undefined;
    }
    if (this.item.text !== before) {
      this.changed.fire(this.item.text);
    }
  }

  dispose(): void {
    this.item.dispose();
    this.changed.dispose();
  }
}
