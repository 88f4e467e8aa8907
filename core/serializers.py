from __future__ import annotations

from django.contrib.auth import password_validation
from rest_framework import serializers
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from core import services
from core.models import User, normalize_email
from core.strict import StrictFieldsMixin, StrictSerializer


class RegisterSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        email = normalize_email(value)
        if User.objects.filter(email=email).exists():
            raise serializers.ValidationError("a user with this email already exists.")
        return email

    def validate(self, attrs: dict) -> dict:
        candidate = User(email=attrs["email"], name=attrs.get("name", ""))
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except Exception as exc:  # django.core.exceptions.ValidationError
            messages = getattr(exc, "messages", [str(exc)])
            raise serializers.ValidationError({"password": [" ".join(messages)]}) from None
        return attrs


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name"]


RegisterSerializer.represents = UserSerializer  # the answer's `id` is read-only


class EmailTokenObtainPairSerializer(StrictFieldsMixin, TokenObtainPairSerializer):
    """Emails log in case-insensitively; a successful login clears the account's failed
    attempts, as the admin login does (core/lockout.py)."""

    def validate(self, attrs: dict) -> dict:
        attrs[self.username_field] = normalize_email(attrs.get(self.username_field, ""))
        tokens = super().validate(attrs)
        services.login_succeeded(self.user)
        return tokens


class TokenRefreshSerializer(StrictFieldsMixin, jwt_serializers.TokenRefreshSerializer):
    """SimpleJWT 5.5 looks the token's user up with `.get()`: a deleted user's refresh token
    raised User.DoesNotExist (a 500). It is an invalid token: the view answers SimpleJWT's
    short 401 `token_not_valid`."""

    def validate(self, attrs: dict) -> dict:
        try:
            return super().validate(attrs)
        except User.DoesNotExist:
            raise TokenError("Token is invalid") from None


class TokenVerifySerializer(StrictFieldsMixin, jwt_serializers.TokenVerifySerializer):
    """`POST /auth/jwt/verify/` takes `token` only."""


class TokenBlacklistSerializer(StrictFieldsMixin, jwt_serializers.TokenBlacklistSerializer):
    """`POST /auth/jwt/logout/` takes `refresh` only."""


class PasswordResetSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(StrictSerializer):
    uid = serializers.CharField(max_length=100, help_text="`uid` from the emailed link.")
    token = serializers.CharField(max_length=100, help_text="`token` from the emailed link.")
    new_password = serializers.CharField(max_length=128, write_only=True,
                                         trim_whitespace=False)
