"""The sign-up form: a user name that cannot be mistaken for another's, and an email address for
password reset when the site can send mail; the form that names a new API token."""

import unicodedata

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from optsite.usernames import look_alike

LOOK_ALIKE = ("This name looks like the name of an existing user (letters from another alphabet, "
              "wide letters or capitals that read the same): choose one that cannot be mistaken for it.")


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, label="Email (optional)",
                             help_text="Only to send you a link if you forget your password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.OPTSITE_PASSWORD_RESET:
            del self.fields["email"]

    def clean_username(self):
        username = super().clean_username()  # NFKC already, and refused if it differs only in case
        if username and "username" not in self.errors:
            names = get_user_model().objects.values_list("username", flat=True)
            if look_alike(username, names) is not None:
                raise forms.ValidationError(LOOK_ALIKE, code="look_alike")
        return username


class TokenForm(forms.Form):
    """A new API token's name, for its owner to tell it apart; refused at the field when the
    account has as many tokens as it may."""

    name = forms.CharField(max_length=100, label="Name",
                           help_text="What it is for, e.g. <em>notebook on my laptop</em>: the list shows it.")

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self):
        from runs import tokens

        name = self.cleaned_data["name"]  # stripped; Django refuses NUL already
        if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
            raise forms.ValidationError("A name is one line of visible text, without control characters.")
        mine = tokens.active_for(self.owner)
        if mine.count() >= tokens.MAX_TOKENS:
            raise forms.ValidationError(f"You have {tokens.MAX_TOKENS} tokens, as many as an account may have: "
                                        "revoke one you no longer use first.")
        if mine.filter(name=name).exists():
            raise forms.ValidationError(f"You already have a token named “{name}”: choose another name.")
        return name
