// Chat templates: rendering a GGUF's Jinja `tokenizer.chat_template`, and parsing tool calls
// out of model output. (Issue 3.)
#pragma once

#include "chat/chat_template.h"
#include "chat/tool_calls.h"
