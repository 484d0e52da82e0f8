"""Post-training (SFT, LoRA/prefix adapters, DPO/IPO, GRPO) against closed forms and identities."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.data import tasks
from genzoo.data.base import DataInfo
from genzoo.models.autoregressive.gpt import GPT, GPTConfig
from genzoo.models.posttrain import DPO, GRPO, SFT, DPOConfig, GRPOConfig, PostTrainConfig
from genzoo.models.posttrain.dpo import preference_loss
from genzoo.models.posttrain.grpo import Rollout, group_advantages, grpo_loss, k3_kl
from genzoo.models.posttrain.sft import response_nll
from genzoo.nn.lora import LoRALinear


def _gpt(block: int = 32, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, dropout=0.0, block_size=block)
    return GPT(cfg, tasks.task_info("text:pystdlib", block)).eval()


def _sft(block: int = 32, **kw) -> SFT:
    cfg = PostTrainConfig(base_run="base", digits=2, **kw)
    return SFT(cfg, tasks.task_info("task:addition", 32), base=_gpt(block))


def _batch() -> dict[str, torch.Tensor]:
    return tasks.PackedSFT("t", tasks.sft_examples("addition", 2, "train", 12), 32).all()


# --- SFT ---------------------------------------------------------------------------------------


def test_sft_gives_no_gradient_to_prompt_tokens() -> None:
    model = _sft()
    batch = _batch()
    logps = model.sequence_logps(batch["x"])
    logps.retain_grad()
    response_nll(logps, batch["mask"]).backward()
    mask = batch["mask"]
    assert torch.all(logps.grad[~mask] == 0)  # prompts and padding: exactly no gradient
    assert torch.all(logps.grad[mask] < 0)  # every response token pulls its log-prob up
    # the loss itself is the mean response NLL: a closed form of the same numbers
    want = -(logps[mask]).mean()
    torch.testing.assert_close(model.loss(batch).loss, want)


def test_lora_policy_starts_at_the_base_and_saves_only_the_adapter() -> None:
    model = _sft(adapter="lora", lora_rank=2, lora_targets="qkv,proj,mlp.0")
    idx = _batch()["x"][:, :20]
    torch.testing.assert_close(model.logits(idx), model.reference(idx), rtol=0, atol=0)
    keys = set(model.state_dict())
    assert keys and all(k.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for k in keys)
    # 2 layers x (qkv 16->48, proj 16->16, mlp.0 16->64): r (d_in + d_out) each
    assert sum(v.numel() for v in model.state_dict().values()) == 2 * 2 * (64 + 32 + 80)
    for p in model.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.1)
    other = _sft(adapter="lora", lora_rank=2, lora_targets="qkv,proj,mlp.0")
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other.logits(idx), model.logits(idx))


def test_zero_length_prefix_is_the_base_and_a_prefix_trains_through_the_cache() -> None:
    idx = _batch()["x"][:, :20]
    zero = _sft(adapter="prefix", prefix_len=0)
    torch.testing.assert_close(zero.logits(idx), zero.reference(idx), rtol=0, atol=0)
    model = _sft(block=40, adapter="prefix", prefix_len=3)
    assert set(model.state_dict()) == {k for k, _ in model.prefix.named_parameters(prefix="prefix")}
    # the cached, one-token-at-a-time path gives the logits of the whole-sequence pass
    full = model.logits(idx[:2])  # (2, 20, V)
    cache = model.new_cache(2)
    steps = [model.logits_cached(idx[:2, i : i + 1], cache)[:, -1] for i in range(20)]
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)
    model.loss(_batch()).loss.backward()
    assert model.prefix.prefix.grad is not None and model.prefix.prefix.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.policy.parameters())  # the GPT stays frozen


def test_bad_bases_are_one_sentence() -> None:
    info = tasks.task_info("task:addition", 32)
    cfg = PostTrainConfig(base_run="base")
    with pytest.raises(ConfigError, match="must be a language model"):
        SFT(cfg, info, base=nn.Linear(2, 2))
    points = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=8), DataInfo("toy2d:moons", "points", (2,)))
    with pytest.raises(ConfigError, match="must be a language model"):
        SFT(cfg, info, base=points)
    other = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=8), DataInfo("text:x", "text", (32,), 50))
    with pytest.raises(ConfigError, match="Tokenizer mismatch"):
        SFT(cfg, info, base=other)
    with pytest.raises(ConfigError, match="needs base_run"):
        SFT(cfg, info)


def test_dpo_and_grpo_on_the_data_of_sft_are_one_sentence() -> None:
    """``genzoo train dpo --data task:addition`` hit a ``KeyError: 'rejected_mask'`` and
    ``grpo`` a ``ValueError`` of the GPT's block size: both trained on packed SFT windows,
    not on the pairs or prompts ``genzoo finetune`` builds for them. Each now names the data
    it needs and the command that builds it."""
    info = tasks.task_info("task:addition", 32)
    dpo = DPO(DPOConfig(base_run="base", digits=2), info, base=_gpt())
    with pytest.raises(ConfigError, match=r"dpo trains on preference pairs.*--method dpo"):
        dpo.loss(_batch())
    grpo = GRPO(GRPOConfig(base_run="base", digits=2), info, base=_gpt())
    with pytest.raises(ConfigError, match=r"grpo trains on prompts alone.*--method grpo"):
        grpo.loss(_batch())


# --- DPO / IPO -----------------------------------------------------------------------------------


def test_dpo_loss_is_ln2_and_ipo_loss_is_its_target_when_policy_is_reference() -> None:
    data = tasks.PairData("t", tasks.preference_pairs("addition", 2, "train", 8))
    model = DPO(DPOConfig(base_run="b", beta=0.5), data.info, base=_gpt())
    out = model.loss(data.all())
    assert abs(out.loss.item() - math.log(2)) < 1e-6
    assert float(out.logs["margin"]) == 0.0
    ipo = DPO(DPOConfig(base_run="b", beta=0.5, loss_type="ipo"), data.info, base=_gpt())
    assert abs(ipo.loss(data.all()).loss.item() - 1.0) < 1e-6  # (0 - 1 / (2 beta))^2 = 1


def _bandit(loss_type: str, beta: float, steps: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    """A categorical policy over K actions trained on the expected preference loss of all
    ordered pairs, preferences drawn from Bradley-Terry with rewards r."""
    torch.manual_seed(0)
    k = 5
    r = torch.tensor([1.0, 0.2, -0.5, 0.7, -1.0], dtype=torch.float64)
    ref = torch.log_softmax(torch.randn(k, dtype=torch.float64), 0)
    logits = ref.clone().requires_grad_(True)
    i, j = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    off = i != j
    i, j = i[off], j[off]
    p_win = torch.sigmoid(r[i] - r[j])  # P(i preferred to j)
    opt = torch.optim.LBFGS([logits], lr=0.5, max_iter=steps, tolerance_grad=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        lp = torch.log_softmax(logits, 0)
        win = preference_loss(lp[i], lp[j], ref[i], ref[j], beta, loss_type)
        lose = preference_loss(lp[j], lp[i], ref[j], ref[i], beta, loss_type)
        loss = (p_win * win + (1 - p_win) * lose).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.log_softmax(logits.detach(), 0), ref


def _kl(lp: torch.Tensor, lq: torch.Tensor) -> float:
    return float((lp.exp() * (lp - lq)).sum())


def test_dpo_reaches_the_kl_regularised_optimum_on_a_bandit() -> None:
    beta = 0.5
    lp, ref = _bandit("dpo", beta)
    r = torch.tensor([1.0, 0.2, -0.5, 0.7, -1.0], dtype=torch.float64)
    star = torch.log_softmax(ref + r / beta, 0)  # pi* ∝ pi_ref exp(r / beta)
    assert _kl(star, lp) < 0.01
    assert _kl(star, ref) > 0.1  # and that optimum is far from where it started


def test_ipo_reaches_its_own_optimum_on_a_bandit() -> None:
    tau = 0.5
    lp, ref = _bandit("ipo", tau)
    r = torch.tensor([1.0, 0.2, -0.5, 0.7, -1.0], dtype=torch.float64)
    p = torch.sigmoid(r[:, None] - r[None, :])
    # least squares of h_ij = (p_ij - 1/2) / tau over all pairs: u_i = sum_j (p_ij - 1/2) / (K tau)
    star = torch.log_softmax(ref + (p - 0.5).sum(1) / (len(r) * tau), 0)
    assert _kl(star, lp) < 1e-4
    dpo_star = torch.log_softmax(ref + r / tau, 0)
    assert _kl(dpo_star, lp) > 0.03  # a different optimum from DPO's


# --- GRPO ---------------------------------------------------------------------------------


def test_group_advantages_sum_to_zero_and_vanish_for_equal_rewards() -> None:
    r = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1]])
    adv = group_advantages(r)
    torch.testing.assert_close(adv.sum(1), torch.zeros(3), rtol=0, atol=1e-6)
    assert torch.all(adv[2] == 0)
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1, -1, 1]), rtol=1e-3, atol=1e-3)


def test_k3_kl_is_nonnegative_and_zero_only_at_equality() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(1000) * 3, torch.randn(1000) * 3
    kl = k3_kl(a, b)
    assert torch.all(kl >= 0) and torch.all(kl[(a - b).abs() > 1e-3] > 0)
    assert torch.all(k3_kl(a, a) == 0)
    # and it is unbiased: E_pi[k3] = KL(pi || ref) on a categorical
    lp = torch.log_softmax(torch.randn(6, dtype=torch.float64), 0)
    lr = torch.log_softmax(torch.randn(6, dtype=torch.float64), 0)
    torch.testing.assert_close((lp.exp() * k3_kl(lp, lr)).sum(), (lp.exp() * (lp - lr)).sum())


def _grpo_inputs(adv: torch.Tensor, shift: float = 0.0):
    torch.manual_seed(1)
    old = -torch.rand(adv.numel(), 4)
    logp = (old + shift).clone().requires_grad_(True)
    mask = torch.ones_like(old, dtype=torch.bool)
    return logp, old, mask


def test_grpo_equal_rewards_give_zero_gradient() -> None:
    adv = group_advantages(torch.ones(2, 3)).flatten()
    logp, old, mask = _grpo_inputs(adv)
    loss, _ = grpo_loss(logp, old, old, adv, mask, 0.2, 0.04)  # policy = old = reference
    loss.backward()
    assert torch.all(logp.grad == 0)


def test_grpo_clip_zeroes_the_gradient_past_one_plus_eps() -> None:
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    eps = 0.2
    for shift, pos_zero, neg_zero in ((math.log(1.3), True, False), (math.log(1.1), False, False)):
        logp, old, mask = _grpo_inputs(adv, shift)
        loss, logs = grpo_loss(logp, old, old, adv, mask, eps, 0.0)
        loss.backward()
        g = logp.grad
        assert bool(torch.all(g[:2] == 0)) == pos_zero  # A > 0, rho > 1 + eps: clipped
        assert not bool(torch.all(g[2:] == 0))  # A < 0: min picks the unclipped term
        assert neg_zero is False
    assert float(logs["clip_frac"]) == 0.0


def test_grpo_rollout_inside_the_loss_serves_inner_iterations() -> None:
    data = tasks.PromptData("t", [p.prompt for p in tasks.problems("addition", 2, "train", 3)])
    cfg = GRPOConfig(base_run="b", group_size=4, inner_iters=2)
    model = GRPO(cfg, data.info, base=_gpt()).train()
    batch = data.all()
    model.loss(batch)
    first = model._rollout
    assert first is not None and first.seq.shape == (12, 6 + model.max_new)
    torch.testing.assert_close(first.adv.view(3, 4).sum(1), torch.zeros(3), rtol=0, atol=1e-5)
    # at the first iteration the policy is pi_old and the reference: ratio 1, KL 0
    out = model.loss(batch)
    assert model._rollout is first and float(out.logs["kl"]) < 1e-6
    model.loss(batch)
    assert model._rollout is not first  # a fresh rollout after inner_iters steps


def _digits_first(question: str, answer: str) -> float:
    """A tiny task's exact verifier: 1 when the answer starts with a digit, else 0."""
    return float(answer[:1].isdigit())


def test_grpo_gradient_equals_a_hand_written_reinforce_gradient() -> None:
    """At ratio 1, without KL, the GRPO loss's gradient is REINFORCE with group-normalised
    advantages, -1/N sum_i A_i / |o_i| sum_t grad log pi_T(o_it | prompt, o_i<t), written here
    from scratch: rewards decoded and scored per answer, advantages per group, each token's
    log-probability from its own forward pass of the prefix before it, at the rollout
    temperature, answer tokens up to the first end of answer only."""
    probs = tasks.problems("addition", 2, "train", 3)
    data = tasks.PromptData("t", [p.prompt for p in probs])
    temp, g_size = 0.7, 4
    cfg = GRPOConfig(base_run="b", group_size=g_size, kl_beta=0.0, rollout_temperature=temp)
    model = GRPO(cfg, data.info, base=_gpt()).train()
    model.set_reward_fn(lambda q, a: float(sum(c.isdigit() for c in a.split("\n")[0])))
    r = model.rollout(data.all()["x"], generator=torch.Generator().manual_seed(3))
    logp = model.sequence_logps(r.seq, temperature=temp)
    torch.testing.assert_close(logp, r.old_logp, rtol=0, atol=0)  # ratio 1 at the first step
    loss, _ = grpo_loss(logp, r.old_logp, r.ref_logp, r.adv, r.mask, 0.2, 0.0)
    params = [p for p in model.policy.parameters()]
    got = torch.autograd.grad(loss, params)

    tok, p_len, bos = tasks.tokenizer(), 6, model.policy.bos
    rewards, terms = [], []
    for i in range(r.seq.shape[0]):
        answer = r.seq[i, p_len:].tolist()
        n = answer.index(0) + 1 if 0 in answer else len(answer)  # up to the first newline
        rewards.append(float(sum(c.isdigit() for c in tok.decode(answer[:n]).split("\n")[0])))
        lp = []
        for t in range(p_len, p_len + n):  # token t given BOS and the tokens before it
            ctx = torch.cat([torch.tensor([bos]), r.seq[i, :t]])[None]  # (1, t + 1)
            logits = model.policy(ctx)[0, -1] / temp  # (V,)
            lp.append(torch.log_softmax(logits, -1)[r.seq[i, t]])
        terms.append(torch.stack(lp).mean())
    rw = torch.tensor(rewards).view(-1, g_size)  # prompts were repeated G times in a row
    assert rw.std(1).max() > 0  # some group has a spread of rewards
    adv = (rw - rw.mean(1, keepdim=True)) / (rw.std(1, unbiased=False, keepdim=True) + 1e-4)
    want_loss = -(adv.flatten() * torch.stack(terms)).mean()
    want = torch.autograd.grad(want_loss, params)
    torch.testing.assert_close(r.reward, torch.tensor(rewards))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_grpo_step_raises_the_better_answer_and_lowers_the_worse() -> None:
    """One optimizer step through ``GRPO.loss`` on a group of two hand-made answers with
    rewards 1 and 0 (advantages +1, -1): the first answer's log-probability rises, the
    second's falls."""
    data = tasks.PromptData("t", ["12+35="])
    model = GRPO(GRPOConfig(base_run="b", group_size=2, kl_beta=0.04), data.info, base=_gpt())
    model.train()
    tok = tasks.tokenizer()
    seq = torch.stack([tok.encode("12+35=47\n"), tok.encode("12+35=93\n")])  # (2, 9)
    mask = torch.zeros_like(seq, dtype=torch.bool)
    mask[:, 6:] = True
    reward = torch.tensor([1.0, 0.0])

    def answer_logps() -> torch.Tensor:
        with torch.no_grad():
            return (model.sequence_logps(seq) * mask).sum(1)

    before = answer_logps()
    adv = group_advantages(reward.view(1, 2)).flatten()
    old = model.sequence_logps(seq).detach()
    ref = model.sequence_logps(seq, reference=True).detach()
    model._rollout, model._uses = Rollout(seq, mask, old, ref, adv, reward), 0
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.loss(data.all()).loss.backward()
    opt.step()
    after = answer_logps()
    assert after[0] > before[0] + 1e-3 and after[1] < before[1] - 1e-3


def test_grpo_raises_the_mean_reward_of_a_tiny_task() -> None:
    """From a random tiny GPT, GRPO with an exact verifier (the answer starts with a digit,
    about 10% of the first tokens at the start) drives the policy's expected reward — computed
    exactly from its next-token distribution after each prompt — up within 30 steps."""
    probs = tasks.problems("addition", 2, "train", 16)
    data = tasks.PromptData("t", [p.prompt for p in probs])
    model = GRPO(GRPOConfig(base_run="b", group_size=8, kl_beta=0.0), data.info, base=_gpt())
    model.set_reward_fn(_digits_first)
    model.train()
    digits = tasks.tokenizer().encode("0123456789")
    x = data.all()["x"]

    def expected_reward() -> float:
        with torch.no_grad():
            bos = torch.full_like(x[:, :1], model.policy.bos)
            logits = model.policy(torch.cat([bos, x], 1))[:, -1]  # (B, V): the first answer token
            return float(logits.softmax(-1)[:, digits].sum(1).mean())

    start = expected_reward()
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        model.loss({"x": x}).loss.backward()
        opt.step()
    end = expected_reward()
    assert start < 0.2 and end > 0.8, (start, end)


def test_a_stage_built_on_a_lora_stage_starts_from_its_merged_policy() -> None:
    sft = _sft(adapter="lora", lora_rank=2)
    for p in sft.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.1)
    data = tasks.PromptData("t", [p.prompt for p in tasks.problems("addition", 2, "train", 2)])
    grpo = GRPO(GRPOConfig(base_run="sft"), data.info, base=sft)
    idx = _batch()["x"][:, :20]
    torch.testing.assert_close(grpo.reference(idx), sft.logits(idx), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, LoRALinear) for m in grpo.modules())  # merged, plain GPT
    with pytest.raises(ConfigError, match="prefix-tuned run"):
        GRPO(GRPOConfig(base_run="sft"), data.info, base=_sft(40, adapter="prefix", prefix_len=2))


def test_a_post_trained_policys_prompt_and_temperature_are_read_as_the_gpts() -> None:
    """``sft.sample(2, prompt="1+2=")`` was ``TypeError: new(): invalid data type 'str'``, an id
    outside the vocabulary an ``IndexError`` and ``temperature="abc"`` a ``TypeError``: the
    prompt is now read by the base GPT's own reader (a text is encoded, ids are checked) and
    the temperature by ``option``."""
    m = _sft()
    ids = tasks.tokenizer().encode("1+2=")
    a = m.sample(2, prompt="1+2=", generator=torch.Generator().manual_seed(0))
    b = m.sample(2, prompt=ids, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and torch.equal(a[:, : len(ids)], ids.expand(2, -1))
    with pytest.raises(ConfigError, match=r"prompt token ids must lie in 0\.\."):
        m.sample(2, prompt=[99999])
    with pytest.raises(ConfigError, match="temperature = 'abc' must be a number"):
        m.sample(2, temperature="abc")


def test_a_length_whose_tokens_would_not_fit_in_memory_is_refused(monkeypatch) -> None:
    """``length=10**9`` ran for hours before it failed; a length whose output would take more
    than half of the machine's memory is one sentence before the first token."""
    import genzoo.core.options as options

    monkeypatch.setattr(options, "memory_bytes", lambda: 2**20)  # a machine of 1 MiB
    for m in (_gpt(), _sft()):
        with pytest.raises(ConfigError, match=r"length = 100000 for n = 2 would take .* GiB"):
            m.sample(2, length=100_000)
        assert m.sample(2, length=3).shape[0] == 2
