"""A vLLM engine inside the generation actor (the `vllm` extra; one actor per GPU set).

For most set-ups a vLLM *server* reached through the `openai` provider's base_url is simpler and
keeps vLLM out of this environment; this backend is for clusters where each GPU actor should own
its engine.
"""

from __future__ import annotations

import asyncio

from mpsynth.config.generation import VllmProviderConfig
from mpsynth.core.errors import MissingDependencyError
from mpsynth.providers import Completion, GenerationRequest
from mpsynth.providers.output import posts_schema

FINISH = {"stop": "stop", "length": "length"}


class VllmProvider:
    kind = "vllm"

    def __init__(self, config: VllmProviderConfig) -> None:
        try:
            import vllm
        except ImportError:
            raise MissingDependencyError(
                "generate provider kind=vllm needs vLLM, which is not installed",
                "pip install 'mpsynth[vllm]' on a GPU machine (not alongside the gpu extra)",
            ) from None
        self.config = config
        self.model = config.model
        self._vllm = vllm
        self.engine = vllm.LLM(
            model=config.model,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
        )
        self._lock = asyncio.Lock()  # one engine call at a time; vLLM batches inside it

    def _sampling(self, request: GenerationRequest):
        options = {}
        if self.config.structured_output:
            from vllm.sampling_params import StructuredOutputsParams

            schema = posts_schema(request.target_platforms, request.posts_per_platform)
            options["structured_outputs"] = StructuredOutputsParams(json=schema)
        return self._vllm.SamplingParams(
            temperature=request.params["temperature"],
            max_tokens=request.params["max_tokens"],
            seed=request.seed,
            **options,
        )

    async def complete(self, request: GenerationRequest) -> Completion:
        async with self._lock:
            outputs = await asyncio.to_thread(
                self.engine.chat, [request.messages], self._sampling(request), use_tqdm=False
            )
        output = outputs[0]
        choice = output.outputs[0]
        return Completion(
            text=choice.text,
            finish_reason=FINISH.get(
                choice.finish_reason or "stop", choice.finish_reason or "stop"
            ),
            prompt_tokens=len(output.prompt_token_ids or []),
            completion_tokens=len(choice.token_ids),
        )

    async def close(self) -> None:
        return None
