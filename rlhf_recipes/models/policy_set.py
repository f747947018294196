"""The policies of a run, loaded for evaluation with one copy of the base weights where possible.

A LoRA-tuned policy is an adapter on the reference policy, so all adapters are loaded onto one
base model and the reference is that model with its adapters disabled. Fully fine-tuned policies
are loaded one at a time. PEFT names each adapter a module, so a policy's adapter is named by its
position ("policy_0", ...), not by the policy's name: a study's variant "ppo_kl_coef_0.02" is not a
valid module name.
"""

from contextlib import contextmanager

from .loading import Loading, is_adapter, load_policy


class PolicySet:
    def __init__(self, paths: dict[str, str], loading: Loading, device: str):
        """paths: policy name -> model or adapter directory; paths["reference"] is the base of every adapter."""
        self.paths, self.loading, self.device = paths, loading, device
        self.base = load_policy(paths["reference"], loading, device)
        adapters = [name for name, path in paths.items() if name != "reference" and is_adapter(path)]
        self.adapters = {name: f"policy_{index}" for index, name in enumerate(adapters)}  # policy -> adapter
        self.shared = None
        if adapters:
            from peft import PeftModel

            first, *rest = adapters
            self.shared = PeftModel.from_pretrained(self.base, paths[first], adapter_name=self.adapters[first]).eval()
            for name in rest:
                self.shared.load_adapter(paths[name], adapter_name=self.adapters[name])

    @contextmanager
    def reference(self):
        """The reference policy: the base, with every adapter switched off."""
        if self.shared is None:
            yield self.base
        else:
            with self.shared.disable_adapter():
                yield self.shared

    @contextmanager
    def policy(self, name: str):
        """The named policy, ready to generate and score."""
        if name == "reference":
            with self.reference() as model:
                yield model
        elif name in self.adapters:
            self.shared.set_adapter(self.adapters[name])
            yield self.shared
        else:
            model = load_policy(self.paths[name], self.loading, self.device)
            yield model
            del model
