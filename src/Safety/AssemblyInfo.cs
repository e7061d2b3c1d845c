// The Safety project: generation and LLM-as-judge evaluation that reproduces llm-jp-judge v2.0.0 (docs/safety-eval.md).
namespace Qwen35.Safety;
