/**
 * Chat messages to one prompt. The template is gpufleet's own, stated so a client knows what the instance sees:
 *
 *   <|system|>\n{content}\n<|user|>\n{content}\n<|assistant|>\n{content}\n ... <|assistant|>\n
 *
 * one block per message in order, content parts of type text joined with "\n", and a trailing assistant tag that
 * the completion continues. Real workers with a model's own chat template may apply theirs instead (issue 14);
 * simulated instances only count the prompt's tokens.
 */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "developer";
  content: string;
}

export function chatPrompt(messages: readonly ChatMessage[]): string {
  return (
    messages.map((m) => `<|${m.role === "developer" ? "system" : m.role}|>\n${m.content}\n`).join("") +
    "<|assistant|>\n"
  );
}
