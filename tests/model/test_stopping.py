"""Stop strings and stop tokens mean the same to HF generate and to vLLM, and rewards read the text vLLM returns."""

from __future__ import annotations

from support import OAT_STOPS
from tinyzero_trl.model.stopping import Stops, stop_settings
from tinyzero_trl.rewards import REWARDS, reading


def test_special_tokens_given_as_strings_become_token_ids(tiny_tokenizer):
    """vLLM skips special tokens in the text it matches stop strings against: as strings they would never stop it."""
    stops = Stops.split(OAT_STOPS, tiny_tokenizer)
    ids = tiny_tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert stops.strings == ("</s>", "\nUser:") and stops.token_ids == tuple(ids)
    assert Stops.split(["\nUser:"], tiny_tokenizer, [7, 7]).token_ids == (7,)
    assert Stops.split(OAT_STOPS).strings == tuple(OAT_STOPS)  # no tokenizer: nothing is known to be special


def test_each_engine_gets_the_same_stops_in_its_own_words(tiny_tokenizer):
    stops = Stops.split(OAT_STOPS, tiny_tokenizer)
    im_end, endoftext = tiny_tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert stops.vllm() == {"stop": ["</s>", "\nUser:"], "stop_token_ids": [im_end, endoftext]}
    assert stops.hf(im_end) == {"stop_strings": ["</s>", "\nUser:"], "eos_token_id": [im_end, endoftext]}
    assert Stops().vllm() == {"stop": None, "stop_token_ids": None}


def test_the_text_ends_before_the_first_stop_string():
    stops = Stops(strings=("\nUser:", "</s>"))
    assert stops.cut("<answer>(1+2)*3</answer>\nUser: next</s>") == "<answer>(1+2)*3</answer>"
    assert stops.cut("no stop here") == "no stop here" and stops.cut(None) is None


def test_a_recipes_generation_kwargs_give_their_stops_and_the_rest():
    assert stop_settings({"stop": "\nUser:", "stop_token_ids": [3], "min_p": 0.1}) == (["\nUser:"], [3],
                                                                                        {"min_p": 0.1})
    assert stop_settings(None) == ([], [], {})


def test_a_reward_reads_the_cut_text_under_its_own_name():
    """The countdown-3b defect: TinyZero's last-line score of '...</answer>\\nUser:' is 0, of '...</answer>' 1."""
    score = REWARDS["tinyzero_countdown"]
    text = "1+2=3 3*3=9</think>\n<answer>(1+2)*3</answer>\nUser:"
    assert score([text], nums=[[1, 2, 3]], target=[9]) == [0.0]
    read = reading(score, Stops(strings=("\nUser:",)).cut)
    assert read.__name__ == "tinyzero_countdown"
    assert read([text], nums=[[1, 2, 3]], target=[9]) == [1.0]
    assert read(completions=[text], nums=[[1, 2, 3]], target=[9]) == [1.0]  # as TRL calls it
    chat = [[{"role": "assistant", "content": text}]]
    assert read(completions=chat, nums=[[1, 2, 3]], target=[9]) == [1.0]
