"""Every GenAI attribute key and value we emit, in one place.

Keys follow the newest OpenTelemetry GenAI semantic conventions. They are spelled out here
rather than imported from ``opentelemetry-semantic-conventions`` because that package marks
them deprecated (they moved to the GenAI conventions repository, which ships no Python
constants), and because PostHog's ingestion reads some older spellings (``cache_creation``)
that the newest conventions renamed.
"""

# Operation and identity of the call
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
CONVERSATION_ID = "gen_ai.conversation.id"
OUTPUT_TYPE = "gen_ai.output.type"

# Request
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_REASONING_LEVEL = "gen_ai.request.reasoning.level"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"

# Response
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"

# Usage. Input tokens include cache tokens, as the conventions require.
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
# PostHog maps the older ``cache_creation`` name; the newest conventions call it ``cache_write``.
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
# The audio or image share of the input and output tokens, which PostHog prices at the model's
# audio and image rates (nodejs/.../ai/costs/input-costs.ts, output-costs.ts); the conventions have
# no keys for them. The PostHog dialect exports them as $ai_audio_input_tokens and so on.
USAGE_AUDIO_INPUT_TOKENS = "posthog_autoinstrument.usage.audio_input_tokens"
USAGE_IMAGE_INPUT_TOKENS = "posthog_autoinstrument.usage.image_input_tokens"
USAGE_IMAGE_OUTPUT_TOKENS = "posthog_autoinstrument.usage.image_output_tokens"

# Content (opt-in in the conventions; JSON strings in the "parts" format)
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

# Tools and agents
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
AGENT_ID = "gen_ai.agent.id"
DATA_SOURCE_ID = "gen_ai.data_source.id"

# Input and output of agent-run steps that the conventions give no attribute (chains, agents,
# retrievers), as JSON. The PostHog dialect exports them as $ai_input_state / $ai_output_state.
INPUT_STATE = "posthog_autoinstrument.input_state"
OUTPUT_STATE = "posthog_autoinstrument.output_state"
# The framework that produced a span (langchain, openai_agents, ...): PostHog's $ai_framework.
FRAMEWORK = "posthog_autoinstrument.framework"

# General conventions
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"

# Vendor-specific request/response details
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
# OpenAI's audio and image endpoints (no GenAI convention covers them yet)
OPENAI_REQUEST_RESPONSE_FORMAT = "openai.request.response_format"
OPENAI_REQUEST_AUDIO_LANGUAGE = "openai.request.audio.language"
OPENAI_REQUEST_AUDIO_VOICE = "openai.request.audio.voice"
OPENAI_REQUEST_SPEECH_INPUT_CHARACTERS = "openai.request.speech.input_characters"
OPENAI_REQUEST_IMAGE_SIZE = "openai.request.image.size"
OPENAI_REQUEST_IMAGE_QUALITY = "openai.request.image.quality"
OPENAI_REQUEST_IMAGE_STYLE = "openai.request.image.style"
OPENAI_REQUEST_IMAGE_BACKGROUND = "openai.request.image.background"
# The seconds of audio a duration-billed model (whisper-1) was sent, as the API reports them
OPENAI_AUDIO_DURATION_SECONDS = "openai.audio.duration_seconds"
# Anthropic, spelled as the anthropic SDK's own spans spell them (so both paths agree)
ANTHROPIC_REQUEST_SERVICE_TIER = "anthropic.request.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"
ANTHROPIC_THINKING_TYPE = "anthropic.thinking.type"
ANTHROPIC_THINKING_BUDGET_TOKENS = "anthropic.thinking.budget_tokens"
ANTHROPIC_CACHE_CREATION_5M_INPUT_TOKENS = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"
ANTHROPIC_CACHE_CREATION_1H_INPUT_TOKENS = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
AWS_REQUEST_ID = "aws.request_id"
AWS_BEDROCK_GUARDRAIL_ID = "aws.bedrock.guardrail.id"

# The base URL the client sent the request to (``https://api.openai.com/v1/``), where the
# adapter knows it: the PostHog dialect exports it as $ai_base_url. The conventions record only
# server.address and server.port.
BASE_URL = "posthog_autoinstrument.base_url"

# Marks a framework-level call whose model request a provider-level span recorded; the PostHog
# dialect turns such a span into a step ($ai_span) so tokens and cost are counted once.
DELEGATED = "posthog_autoinstrument.delegated"

# The end user an application named in the LLM request itself (OpenAI `user` /
# `safety_identifier`, Anthropic `metadata.user_id`); a source of the PostHog person.
END_USER_ID = "posthog_autoinstrument.end_user_id"

# Code location of the application function that made the call
CODE_FUNCTION_NAME = "code.function.name"
CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"


class Operation:
    CHAT = "chat"
    TEXT_COMPLETION = "text_completion"
    GENERATE_CONTENT = "generate_content"
    EMBEDDINGS = "embeddings"
    EXECUTE_TOOL = "execute_tool"
    INVOKE_AGENT = "invoke_agent"
    INVOKE_WORKFLOW = "invoke_workflow"
    RETRIEVAL = "retrieval"


class Provider:
    """Well-known ``gen_ai.provider.name`` values."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure.ai.openai"
    ANTHROPIC = "anthropic"
    GCP_GEMINI = "gcp.gemini"
    GCP_VERTEX_AI = "gcp.vertex_ai"
    AWS_BEDROCK = "aws.bedrock"
    GROQ = "groq"
    DEEPSEEK = "deepseek"
    MISTRAL_AI = "mistral_ai"
    XAI = "x_ai"
    PERPLEXITY = "perplexity"
    COHERE = "cohere"
    OPENROUTER = "openrouter"
    OLLAMA = "ollama"
    TOGETHER = "together"
    AZURE_AI_INFERENCE = "azure.ai.inference"
    IBM_WATSONX_AI = "ibm.watsonx.ai"


# Attribute key prefixes that make PostHog's capture accept a span as an AI span.
POSTHOG_AI_ATTRIBUTE_PREFIXES = ("gen_ai.", "ai.", "eve.", "pydantic_ai.", "traceloop.", "openinference.")
POSTHOG_AI_ATTRIBUTE_KEYS = frozenset({"llm.request.type"})
